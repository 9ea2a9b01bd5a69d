"""The ``[gates.*]`` and ``[games]`` sections: what a data gate reads and when it blocks or alerts.

A part of ``shared.pipeline.definition`` (import from there).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from shared.pipeline._models import DefinitionModel, Name, TableRef

GateValue = int | float | str | bool


class GateTable(DefinitionModel):
    """A table a gate reads, with the column that holds the game date (the partition filter)."""

    table: TableRef
    date_column: Name = "game_date"


class Predicate(DefinitionModel):
    """One declared condition of a ``ratio`` gate: ``<column> <op> @value``, or over
    ``COALESCE(<coalesce...>, @default)``. Columns are identifiers from the definition; values
    are query parameters (never SQL text)."""

    column: Name | None = None
    coalesce: tuple[Name, ...] = ()
    default: GateValue | None = None
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "is_null", "not_null", "is_true", "is_false"]
    value: GateValue | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.column is None) == (not self.coalesce):
            raise ValueError("a predicate needs exactly one of `column` or `coalesce`")
        if self.default is not None and not self.coalesce:
            raise ValueError("`default` is the last COALESCE argument: give it with `coalesce` only")
        unary = self.op in ("is_null", "not_null", "is_true", "is_false")
        if unary and self.value is not None:
            raise ValueError(f"op {self.op!r} takes no `value`")
        if not unary and self.value is None:
            raise ValueError(f"op {self.op!r} needs a `value`")
        return self


class _GateBase(DefinitionModel):
    """What every gate kind has: thresholds in percent, advisory, the modes it applies to.

    A value below ``block_below`` (above ``block_above``) blocks; below ``alert_below`` (above
    ``alert_above``) triggers with a warning. An advisory gate never blocks: a block becomes an
    alert and an error becomes an alert with the error text (lesson L17).
    """

    advisory: bool = False
    modes: tuple[Name, ...] = ()  # empty: every mode (and transitions without modes)
    block_below: float | None = Field(default=None, ge=0, le=100)
    alert_below: float | None = Field(default=None, ge=0, le=100)
    block_above: float | None = Field(default=None, ge=0, le=100)
    alert_above: float | None = Field(default=None, ge=0, le=100)
    description: str = ""

    def applies_to(self, mode: str | None) -> bool:
        return not self.modes or (mode is not None and mode in self.modes)

    def thresholds(self) -> dict[str, float]:
        names = ("block_below", "alert_below", "block_above", "alert_above")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    def read_tables(self) -> tuple[GateTable, ...]:
        """The tables this gate's query reads (deploy grants read rights on them)."""
        return ()

    @model_validator(mode="after")
    def _threshold_order(self) -> Self:
        if self.block_below is not None and self.alert_below is not None and self.alert_below < self.block_below:
            raise ValueError("alert_below must be ≥ block_below (the alert line sits above the block line)")
        if self.block_above is not None and self.alert_above is not None and self.alert_above > self.block_above:
            raise ValueError("alert_above must be ≤ block_above (the alert line sits below the block line)")
        return self


class _LowerIsWorse(_GateBase):
    @model_validator(mode="after")
    def _direction(self) -> Self:
        if self.block_above is not None or self.alert_above is not None:
            raise ValueError("this gate kind takes block_below/alert_below (higher is better)")
        if self.block_below is None and self.alert_below is None:
            raise ValueError("give block_below and/or alert_below")
        return self


class RowsPresentGate(_LowerIsWorse):
    """Each listed table has rows for the date (R-008/R-006). The value is the share of tables
    with rows; a table in ``required`` without rows blocks whatever the share."""

    kind: Literal["rows_present"]
    tables: tuple[GateTable, ...] = Field(min_length=1)
    required: tuple[TableRef, ...] = ()

    def read_tables(self) -> tuple[GateTable, ...]:
        return self.tables

    @model_validator(mode="after")
    def _required_listed(self) -> Self:
        listed = {t.table for t in self.tables}
        unknown = [r for r in self.required if r not in listed]
        if unknown:
            raise ValueError(f"required {unknown} are not among the gate's tables")
        return self


class GameSource(DefinitionModel):
    """A table that holds game rows, keyed by a game id in any known format (normalised, L15)."""

    name: Name
    table: TableRef
    game_id_column: Name = "game_id"
    date_column: Name = "game_date"


class GameCoverageGate(_LowerIsWorse):
    """Distinct games in a table vs the schedule's Final games (ids normalised, L15).

    Without ``sources`` it reads the ``[games]`` fallback chain (a game is covered when any
    source has it, L13), and the games still missing are handed to auto-retry.
    """

    kind: Literal["game_coverage_pct"]
    sources: tuple[GameSource, ...] = ()

    @property
    def uses_boxscore_chain(self) -> bool:
        return not self.sources

    def read_tables(self) -> tuple[GateTable, ...]:
        return tuple(GateTable(table=s.table, date_column=s.date_column) for s in self.sources)


class RatioGate(_LowerIsWorse):
    """The share of rows (or of distinct ``key`` values) meeting every declared predicate.

    The denominator is the same table without the predicates, or ``denominator`` (for instance
    the expected roster of another table).
    """

    kind: Literal["ratio"]
    table: GateTable
    key: Name | None = None
    where: tuple[Predicate, ...] = Field(min_length=1)
    denominator: GateTable | None = None
    denominator_key: Name | None = None

    def read_tables(self) -> tuple[GateTable, ...]:
        return (self.table, *((self.denominator,) if self.denominator else ()))

    @model_validator(mode="after")
    def _denominator_key(self) -> Self:
        if self.denominator_key is not None and self.denominator is None:
            raise ValueError("denominator_key needs a `denominator` table")
        if self.denominator_key is not None and self.key is None:
            raise ValueError("denominator_key needs `key` (distinct keys over distinct keys, not over rows)")
        return self


class NullRateTable(GateTable):
    columns: tuple[Name, ...] = Field(min_length=1)


class NullRateGate(_GateBase):
    """The largest NULL share among the listed columns (lower is better: ``block_above``)."""

    kind: Literal["null_rate"]
    tables: tuple[NullRateTable, ...] = Field(min_length=1)

    def read_tables(self) -> tuple[GateTable, ...]:
        return self.tables

    @model_validator(mode="after")
    def _direction(self) -> Self:
        if self.block_below is not None or self.alert_below is not None:
            raise ValueError("gate kind 'null_rate' takes block_above/alert_above (a NULL share: lower is better)")
        if self.block_above is None and self.alert_above is None:
            raise ValueError("give block_above and/or alert_above")
        return self


class ServiceHealthGate(_GateBase):
    """An ID-token GET to ``$url_env`` + ``path``; healthy on 2xx with a JSON ``status`` in
    ``healthy_statuses``. Advisory by default (the replaced system triggers anyway)."""

    kind: Literal["service_health"]
    advisory: bool = True
    url_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    path: str = Field(default="/ready", pattern=r"^/[A-Za-z0-9/_.-]*$")
    auth: Literal["id_token", "none"] = "id_token"
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    healthy_statuses: tuple[str, ...] = ("ready", "degraded")


Gate = Annotated[
    RowsPresentGate | GameCoverageGate | RatioGate | NullRateGate | ServiceHealthGate, Field(discriminator="kind")
]


class BoxscoreSource(DefinitionModel):
    name: Name
    processor: Name
    table: TableRef
    game_id_column: Name = "game_id"
    date_column: Name = "game_date"


class GamesSources(DefinitionModel):
    """Where games and their boxscores live, and every column the coverage gate reads.

    Gate SQL names only these columns (and the package's own ``unavailable_table``). The
    defaults are the replaced system's real schemas (``schemas/bigquery/raw/`` at
    najicham/nba-stats-scraper@18f6ecfe; checked in under ``deploy/bigquery/upstream/``).
    """

    schedule_table: TableRef
    schedule_date_column: Name = "game_date"
    schedule_game_id_column: Name = "game_id"
    schedule_status_column: Name = "game_status"
    final_status: str = "3"
    schedule_away_team_column: Name = "away_team_tricode"
    schedule_home_team_column: Name = "home_team_tricode"
    schedule_updated_column: Name | None = "processed_at"
    schedule_status_text_column: Name | None = None
    excluded_status_texts: tuple[str, ...] = ()
    # postponement (shared.orchestration.postponement): a Final game with a NULL score, or whose game id
    # is on the schedule again within `reschedule_lookahead_days` after its date (0: not looked for), is
    # postponed; `postponed_after_empty_hours` (None: off) also calls a Final game with no row in any
    # boxscore source that many hours after its date ended postponed, when its schedule row was
    # rewritten on or after its date
    schedule_home_score_column: Name | None = None
    schedule_away_score_column: Name | None = None
    reschedule_lookahead_days: int = Field(default=0, ge=0, le=60)
    postponed_after_empty_hours: float | None = Field(default=None, gt=0)
    unavailable_table: TableRef
    boxscore_sources: tuple[BoxscoreSource, ...] = Field(min_length=1)

    @field_validator("final_status", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _status_text_needs_column(self) -> Self:
        if self.excluded_status_texts and self.schedule_status_text_column is None:
            raise ValueError("excluded_status_texts needs schedule_status_text_column")
        if (self.schedule_home_score_column is None) != (self.schedule_away_score_column is None):
            raise ValueError("schedule_home_score_column and schedule_away_score_column go together")
        return self

    def is_final(self, status: str | None) -> bool:
        """Whether a schedule status (as text) means Final."""
        return (status or "").strip().lower() == self.final_status.strip().lower()

    def excluded_by_text(self, status_text: str | None) -> str | None:
        """The configured prefix a schedule status text starts with (a postponed game), if any."""
        text = (status_text or "").strip().lower()
        return next((p for p in self.excluded_status_texts if text.startswith(p.lower())), None)
