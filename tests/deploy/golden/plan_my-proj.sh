#!/usr/bin/env bash
# phasectl deploy plan — project my-proj, region us-west2
# Each resource: describe; create when missing, else update (phasectl deploy apply does this).
# Table schemas are written to build/deploy/bigquery/ and bundles to build/ by apply.
set -euo pipefail

# [1] binding: enable APIs
gcloud services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com cloudscheduler.googleapis.com bigquery.googleapis.com firestore.googleapis.com iam.googleapis.com logging.googleapis.com secretmanager.googleapis.com --project=my-proj

# [2] lookup: project number (for the Pub/Sub service agent)
PROJECT_NUMBER="$(gcloud projects describe my-proj '--format=value(projectNumber)')"

# [3] resource: Firestore database (default)
gcloud firestore databases describe '--database=(default)' --project=my-proj >/dev/null 2>&1 || \
  gcloud firestore databases create '--database=(default)' --location=nam5 --type=firestore-native --project=my-proj

# [4] resource: custom role phasechainTableWriter (bigquery.tables.get, bigquery.tables.getData, bigquery.tables.updateData)
if gcloud iam roles describe phasechainTableWriter --project=my-proj >/dev/null 2>&1; then
  gcloud iam roles update phasechainTableWriter --project=my-proj '--title=phasechain table writer' '--description=Read and write the rows of a table (streaming inserts, DML); no delete, no schema change.' --permissions=bigquery.tables.get,bigquery.tables.getData,bigquery.tables.updateData --stage=GA
else
  gcloud iam roles create phasechainTableWriter --project=my-proj '--title=phasechain table writer' '--description=Read and write the rows of a table (streaming inserts, DML); no delete, no schema change.' --permissions=bigquery.tables.get,bigquery.tables.getData,bigquery.tables.updateData --stage=GA
fi

# [5] ensure: Firestore TTL policy phase_transitions.expires_at (400 days; the transition functions: one document per transition and date)
gcloud firestore fields ttls list --collection-group=phase_transitions --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=phase_transitions --enable-ttl --project=my-proj --async

# [6] ensure: Firestore TTL policy completions.expires_at (400 days; the transition functions: phase_transitions/*/completions)
gcloud firestore fields ttls list --collection-group=completions --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=completions --enable-ttl --project=my-proj --async

# [7] ensure: Firestore TTL policy claims.expires_at (400 days; transitions and timed triggers: phase_transitions/*/claims (claim documents))
gcloud firestore fields ttls list --collection-group=claims --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=claims --enable-ttl --project=my-proj --async

# [8] ensure: Firestore TTL policy phase_execution_log_outbox.expires_at (30 days; the transition functions: log rows and hand-offs not yet delivered)
gcloud firestore fields ttls list --collection-group=phase_execution_log_outbox --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=phase_execution_log_outbox --enable-ttl --project=my-proj --async

# [9] ensure: Firestore TTL policy quarantine.expires_at (30 days; every function: bad or stale input)
gcloud firestore fields ttls list --collection-group=quarantine --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=quarantine --enable-ttl --project=my-proj --async

# [10] ensure: Firestore TTL policy monitor_alerts.expires_at (30 days; the monitor: deduplicated findings)
gcloud firestore fields ttls list --collection-group=monitor_alerts --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=monitor_alerts --enable-ttl --project=my-proj --async

# [11] ensure: Firestore TTL policy operator_audit.expires_at (400 days; phasectl: the operator audit)
gcloud firestore fields ttls list --collection-group=operator_audit --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=operator_audit --enable-ttl --project=my-proj --async

# [12] ensure: Firestore TTL policy trigger_inbox.expires_at (30 days; consumers: shared.client.TriggerInbox entries)
gcloud firestore fields ttls list --collection-group=trigger_inbox --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=trigger_inbox --enable-ttl --project=my-proj --async

# [13] ensure: Firestore TTL policy schedule_runs.expires_at (400 days; the schedule dispatcher: one run per job and slot)
gcloud firestore fields ttls list --collection-group=schedule_runs --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=schedule_runs --enable-ttl --project=my-proj --async

# [14] ensure: Firestore TTL policy schedule_jobs.expires_at (400 days; the schedule dispatcher: each job's last run (the season overrides never expire))
gcloud firestore fields ttls list --collection-group=schedule_jobs --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=schedule_jobs --enable-ttl --project=my-proj --async

# [15] ensure: Firestore TTL policy self_heal.expires_at (60 days; the monitor's self-heal checkpoints: attempts (claims) and verdicts)
gcloud firestore fields ttls list --collection-group=self_heal --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=self_heal --enable-ttl --project=my-proj --async

# [16] ensure: Firestore TTL policy backfill_queue.expires_at (400 days; the gap pass: the backfill queue's entries)
gcloud firestore fields ttls list --collection-group=backfill_queue --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=backfill_queue --enable-ttl --project=my-proj --async

# [17] ensure: Firestore TTL policy backfill_slots.expires_at (400 days; the gap pass: the backfill rate cap's hourly slots)
gcloud firestore fields ttls list --collection-group=backfill_slots --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=backfill_slots --enable-ttl --project=my-proj --async

# [18] resource: service account phase2-to-phase3@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase2-to-phase3@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase2-to-phase3 '--display-name=phasechain phase2_to_phase3' --project=my-proj

# [19] resource: service account phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase2-to-phase3-inv '--display-name=phasechain phase2_to_phase3 trigger (invoker only)' --project=my-proj

# [20] binding: phase2_to_phase3: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [21] binding: phase2_to_phase3: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [22] binding: phase2_to_phase3: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [23] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [24] resource: service account phase3-to-phase4@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase3-to-phase4@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase3-to-phase4 '--display-name=phasechain phase3_to_phase4' --project=my-proj

# [25] resource: service account phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase3-to-phase4-inv '--display-name=phasechain phase3_to_phase4 trigger (invoker only)' --project=my-proj

# [26] binding: phase3_to_phase4: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [27] binding: phase3_to_phase4: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [28] binding: phase3_to_phase4: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [29] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [30] resource: service account phase4-to-phase5@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase4-to-phase5@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase4-to-phase5 '--display-name=phasechain phase4_to_phase5' --project=my-proj

# [31] resource: service account phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase4-to-phase5-inv '--display-name=phasechain phase4_to_phase5 trigger (invoker only)' --project=my-proj

# [32] binding: phase4_to_phase5: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [33] binding: phase4_to_phase5: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [34] binding: phase4_to_phase5: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [35] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [36] resource: service account phase5-to-phase6@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase5-to-phase6@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase5-to-phase6 '--display-name=phasechain phase5_to_phase6' --project=my-proj

# [37] resource: service account phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase5-to-phase6-inv '--display-name=phasechain phase5_to_phase6 trigger (invoker only)' --project=my-proj

# [38] binding: phase5_to_phase6: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [39] binding: phase5_to_phase6: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [40] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [41] resource: service account phase-transition-monitor@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase-transition-monitor@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase-transition-monitor '--display-name=phasechain phase_transition_monitor' --project=my-proj

# [42] resource: service account phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase-transition-monitor-inv '--display-name=phasechain phase_transition_monitor trigger (invoker only)' --project=my-proj

# [43] binding: phase_transition_monitor: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [44] binding: phase_transition_monitor: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [45] binding: phase_transition_monitor: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [46] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [47] resource: service account auto-retry-processor@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe auto-retry-processor@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create auto-retry-processor '--display-name=phasechain auto_retry_processor' --project=my-proj

# [48] resource: service account auto-retry-processor-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe auto-retry-processor-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create auto-retry-processor-inv '--display-name=phasechain auto_retry_processor trigger (invoker only)' --project=my-proj

# [49] binding: auto_retry_processor: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [50] binding: auto_retry_processor: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [51] binding: auto_retry_processor: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [52] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account auto-retry-processor-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding auto-retry-processor-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [53] resource: service account schedule-dispatcher@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe schedule-dispatcher@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create schedule-dispatcher '--display-name=phasechain schedule_dispatcher' --project=my-proj

# [54] resource: service account schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create schedule-dispatcher-inv '--display-name=phasechain schedule_dispatcher trigger (invoker only)' --project=my-proj

# [55] binding: schedule_dispatcher: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [56] binding: schedule_dispatcher: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [57] binding: schedule_dispatcher: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [58] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [59] resource: service account grading-readiness@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe grading-readiness@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create grading-readiness '--display-name=phasechain grading_readiness' --project=my-proj

# [60] resource: service account grading-readiness-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe grading-readiness-inv@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create grading-readiness-inv '--display-name=phasechain grading_readiness trigger (invoker only)' --project=my-proj

# [61] binding: grading_readiness: roles/bigquery.jobUser on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [62] binding: grading_readiness: roles/datastore.user on project my-proj if resource.name == "projects/my-proj/databases/(default)"
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/datastore.user '--condition=expression=resource.name == "projects/my-proj/databases/(default)",title=phasechain-default-database'

# [63] binding: grading_readiness: roles/logging.logWriter on project my-proj
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [64] binding: Pub/Sub service agent: roles/iam.serviceAccountTokenCreator on service account grading-readiness-inv@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding grading-readiness-inv@my-proj.iam.gserviceaccount.com "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj

# [65] resource: secret slack-webhook (the monitor's Slack incoming-webhook URL; no value: phasectl deploy secret set slack-webhook)
gcloud secrets describe slack-webhook --project=my-proj >/dev/null 2>&1 || \
  gcloud secrets create slack-webhook --replication-policy=automatic --project=my-proj

# [66] binding: phase_transition_monitor: roles/secretmanager.secretAccessor on secret slack-webhook
gcloud secrets add-iam-policy-binding slack-webhook --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/secretmanager.secretAccessor --condition=None --project=my-proj

# [67] resource: topic auto-retry-trigger
gcloud pubsub topics describe auto-retry-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create auto-retry-trigger --project=my-proj

# [68] resource: topic auto-retry-trigger-dlq
gcloud pubsub topics describe auto-retry-trigger-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create auto-retry-trigger-dlq --project=my-proj

# [69] resource: topic grading-readiness-tick
gcloud pubsub topics describe grading-readiness-tick --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create grading-readiness-tick --project=my-proj

# [70] resource: topic grading-readiness-tick-dlq
gcloud pubsub topics describe grading-readiness-tick-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create grading-readiness-tick-dlq --project=my-proj

# [71] resource: topic nba-grading-trigger
gcloud pubsub topics describe nba-grading-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-grading-trigger --project=my-proj

# [72] resource: topic nba-phase2-raw-complete
gcloud pubsub topics describe nba-phase2-raw-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-raw-complete --project=my-proj

# [73] resource: topic nba-phase2-raw-complete-dlq
gcloud pubsub topics describe nba-phase2-raw-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-raw-complete-dlq --project=my-proj

# [74] resource: topic nba-phase2-retry
gcloud pubsub topics describe nba-phase2-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-retry --project=my-proj

# [75] resource: topic nba-phase3-analytics-complete
gcloud pubsub topics describe nba-phase3-analytics-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-analytics-complete --project=my-proj

# [76] resource: topic nba-phase3-analytics-complete-dlq
gcloud pubsub topics describe nba-phase3-analytics-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-analytics-complete-dlq --project=my-proj

# [77] resource: topic nba-phase3-retry
gcloud pubsub topics describe nba-phase3-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-retry --project=my-proj

# [78] resource: topic nba-phase3-trigger
gcloud pubsub topics describe nba-phase3-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-trigger --project=my-proj

# [79] resource: topic nba-phase4-precompute-complete
gcloud pubsub topics describe nba-phase4-precompute-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-precompute-complete --project=my-proj

# [80] resource: topic nba-phase4-precompute-complete-dlq
gcloud pubsub topics describe nba-phase4-precompute-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-precompute-complete-dlq --project=my-proj

# [81] resource: topic nba-phase4-retry
gcloud pubsub topics describe nba-phase4-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-retry --project=my-proj

# [82] resource: topic nba-phase4-trigger
gcloud pubsub topics describe nba-phase4-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-trigger --project=my-proj

# [83] resource: topic nba-phase5-predictions-complete
gcloud pubsub topics describe nba-phase5-predictions-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-predictions-complete --project=my-proj

# [84] resource: topic nba-phase5-predictions-complete-dlq
gcloud pubsub topics describe nba-phase5-predictions-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-predictions-complete-dlq --project=my-proj

# [85] resource: topic nba-phase5-retry
gcloud pubsub topics describe nba-phase5-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-retry --project=my-proj

# [86] resource: topic nba-phase6-export-complete
gcloud pubsub topics describe nba-phase6-export-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase6-export-complete --project=my-proj

# [87] resource: topic nba-phase6-export-trigger
gcloud pubsub topics describe nba-phase6-export-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase6-export-trigger --project=my-proj

# [88] resource: topic nba-predictions-trigger
gcloud pubsub topics describe nba-predictions-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-predictions-trigger --project=my-proj

# [89] resource: topic phase-transition-monitor-trigger
gcloud pubsub topics describe phase-transition-monitor-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create phase-transition-monitor-trigger --project=my-proj

# [90] resource: topic phase-transition-monitor-trigger-dlq
gcloud pubsub topics describe phase-transition-monitor-trigger-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create phase-transition-monitor-trigger-dlq --project=my-proj

# [91] resource: topic schedule-dispatcher-tick
gcloud pubsub topics describe schedule-dispatcher-tick --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create schedule-dispatcher-tick --project=my-proj

# [92] resource: topic schedule-dispatcher-tick-dlq
gcloud pubsub topics describe schedule-dispatcher-tick-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create schedule-dispatcher-tick-dlq --project=my-proj

# [93] binding: phase2_to_phase3: roles/pubsub.publisher on topic auto-retry-trigger
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [94] binding: phase2_to_phase3: roles/pubsub.publisher on topic nba-phase3-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase3-trigger --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [95] resource: dead-letter subscription phase2-to-phase3-dlq-sub
if gcloud pubsub subscriptions describe phase2-to-phase3-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase2-to-phase3-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase2-to-phase3-dlq-sub --topic=nba-phase2-raw-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [96] binding: Pub/Sub service agent: roles/pubsub.publisher on topic nba-phase2-raw-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase2-raw-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [97] binding: phase3_to_phase4: roles/pubsub.publisher on topic auto-retry-trigger
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [98] binding: phase3_to_phase4: roles/pubsub.publisher on topic nba-phase4-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase4-trigger --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [99] resource: dead-letter subscription phase3-to-phase4-dlq-sub
if gcloud pubsub subscriptions describe phase3-to-phase4-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase3-to-phase4-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase3-to-phase4-dlq-sub --topic=nba-phase3-analytics-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [100] binding: Pub/Sub service agent: roles/pubsub.publisher on topic nba-phase3-analytics-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase3-analytics-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [101] binding: phase4_to_phase5: roles/pubsub.publisher on topic auto-retry-trigger
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [102] binding: phase4_to_phase5: roles/pubsub.publisher on topic nba-predictions-trigger
gcloud pubsub topics add-iam-policy-binding nba-predictions-trigger --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [103] resource: dead-letter subscription phase4-to-phase5-dlq-sub
if gcloud pubsub subscriptions describe phase4-to-phase5-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase4-to-phase5-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase4-to-phase5-dlq-sub --topic=nba-phase4-precompute-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [104] binding: Pub/Sub service agent: roles/pubsub.publisher on topic nba-phase4-precompute-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase4-precompute-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [105] binding: phase5_to_phase6: roles/pubsub.publisher on topic auto-retry-trigger
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [106] binding: phase5_to_phase6: roles/pubsub.publisher on topic nba-phase6-export-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase6-export-trigger --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [107] resource: dead-letter subscription phase5-to-phase6-dlq-sub
if gcloud pubsub subscriptions describe phase5-to-phase6-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase5-to-phase6-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase5-to-phase6-dlq-sub --topic=nba-phase5-predictions-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [108] binding: Pub/Sub service agent: roles/pubsub.publisher on topic nba-phase5-predictions-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase5-predictions-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [109] binding: phase_transition_monitor: roles/pubsub.publisher on topic auto-retry-trigger
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [110] binding: phase_transition_monitor: roles/pubsub.publisher on topic nba-phase3-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase3-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [111] binding: phase_transition_monitor: roles/pubsub.publisher on topic nba-phase4-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase4-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [112] binding: phase_transition_monitor: roles/pubsub.publisher on topic nba-phase6-export-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase6-export-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [113] binding: phase_transition_monitor: roles/pubsub.publisher on topic nba-predictions-trigger
gcloud pubsub topics add-iam-policy-binding nba-predictions-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [114] resource: dead-letter subscription phase-transition-monitor-dlq-sub
if gcloud pubsub subscriptions describe phase-transition-monitor-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase-transition-monitor-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase-transition-monitor-dlq-sub --topic=phase-transition-monitor-trigger-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [115] binding: Pub/Sub service agent: roles/pubsub.publisher on topic phase-transition-monitor-trigger-dlq
gcloud pubsub topics add-iam-policy-binding phase-transition-monitor-trigger-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [116] binding: auto_retry_processor: roles/pubsub.publisher on topic nba-phase2-retry
gcloud pubsub topics add-iam-policy-binding nba-phase2-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [117] binding: auto_retry_processor: roles/pubsub.publisher on topic nba-phase3-retry
gcloud pubsub topics add-iam-policy-binding nba-phase3-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [118] binding: auto_retry_processor: roles/pubsub.publisher on topic nba-phase4-retry
gcloud pubsub topics add-iam-policy-binding nba-phase4-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [119] binding: auto_retry_processor: roles/pubsub.publisher on topic nba-phase5-retry
gcloud pubsub topics add-iam-policy-binding nba-phase5-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [120] resource: dead-letter subscription auto-retry-processor-dlq-sub
if gcloud pubsub subscriptions describe auto-retry-processor-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update auto-retry-processor-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create auto-retry-processor-dlq-sub --topic=auto-retry-trigger-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [121] binding: Pub/Sub service agent: roles/pubsub.publisher on topic auto-retry-trigger-dlq
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [122] binding: schedule_dispatcher: roles/pubsub.publisher on topic grading-readiness-tick
gcloud pubsub topics add-iam-policy-binding grading-readiness-tick --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [123] binding: schedule_dispatcher: roles/pubsub.publisher on topic nba-phase6-export-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase6-export-trigger --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [124] binding: schedule_dispatcher: roles/pubsub.publisher on topic phase-transition-monitor-trigger
gcloud pubsub topics add-iam-policy-binding phase-transition-monitor-trigger --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [125] resource: dead-letter subscription schedule-dispatcher-dlq-sub
if gcloud pubsub subscriptions describe schedule-dispatcher-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update schedule-dispatcher-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create schedule-dispatcher-dlq-sub --topic=schedule-dispatcher-tick-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [126] binding: Pub/Sub service agent: roles/pubsub.publisher on topic schedule-dispatcher-tick-dlq
gcloud pubsub topics add-iam-policy-binding schedule-dispatcher-tick-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [127] binding: grading_readiness: roles/pubsub.publisher on topic nba-grading-trigger
gcloud pubsub topics add-iam-policy-binding nba-grading-trigger --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [128] resource: dead-letter subscription grading-readiness-dlq-sub
if gcloud pubsub subscriptions describe grading-readiness-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update grading-readiness-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create grading-readiness-dlq-sub --topic=grading-readiness-tick-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [129] binding: Pub/Sub service agent: roles/pubsub.publisher on topic grading-readiness-tick-dlq
gcloud pubsub topics add-iam-policy-binding grading-readiness-tick-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [130] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription phase2-to-phase3-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding phase2-to-phase3-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [131] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription phase3-to-phase4-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding phase3-to-phase4-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [132] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription phase4-to-phase5-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding phase4-to-phase5-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [133] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription phase5-to-phase6-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding phase5-to-phase6-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [134] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription phase-transition-monitor-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding phase-transition-monitor-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [135] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription auto-retry-processor-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding auto-retry-processor-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [136] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription schedule-dispatcher-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding schedule-dispatcher-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [137] binding: phase_transition_monitor: roles/pubsub.subscriber on subscription grading-readiness-dlq-sub
gcloud pubsub subscriptions add-iam-policy-binding grading-readiness-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [138] resource: dataset nba_orchestration
bq show --format=none --dataset my-proj:nba_orchestration >/dev/null 2>&1 || \
  bq --location=US mk --dataset my-proj:nba_orchestration

# [139] resource: table nba_orchestration.phase_execution_log
if bq show --format=none my-proj:nba_orchestration.phase_execution_log >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.phase_execution_log.schema.json '--description=One row per transition outcome (complete | partial | deadline_exceeded | blocked). Written through a Firestore outbox: a BigQuery outage delays rows, never loses them.' --clustering_fields=phase_name,status my-proj:nba_orchestration.phase_execution_log
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.phase_execution_log.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=One row per transition outcome (complete | partial | deadline_exceeded | blocked). Written through a Firestore outbox: a BigQuery outage delays rows, never loses them.' --clustering_fields=phase_name,status my-proj:nba_orchestration.phase_execution_log
fi

# [140] resource: table nba_orchestration.failed_processor_queue
if bq show --format=none my-proj:nba_orchestration.failed_processor_queue >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.failed_processor_queue.schema.json '--description=Failed processor runs awaiting auto-retry. One open row (pending|retrying) or terminal failed_permanent row per phase+processor_name+game_date; failed_permanent stays terminal until an operator requeues it.' --time_partitioning_expiration=34560000 --clustering_fields=status,processor_name my-proj:nba_orchestration.failed_processor_queue
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.failed_processor_queue.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=Failed processor runs awaiting auto-retry. One open row (pending|retrying) or terminal failed_permanent row per phase+processor_name+game_date; failed_permanent stays terminal until an operator requeues it.' --time_partitioning_expiration=34560000 --clustering_fields=status,processor_name my-proj:nba_orchestration.failed_processor_queue
fi

# [141] resource: table nba_orchestration.streaming_conflict_log
if bq show --format=none my-proj:nba_orchestration.streaming_conflict_log >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.streaming_conflict_log.schema.json '--description=Every DML conflict the retry queue met (streaming buffer, concurrent DML, quota) and how it ended.' --time_partitioning_expiration=7776000 --clustering_fields=processor_name,game_date my-proj:nba_orchestration.streaming_conflict_log
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.streaming_conflict_log.schema.json --time_partitioning_type=DAY --time_partitioning_field=timestamp '--description=Every DML conflict the retry queue met (streaming buffer, concurrent DML, quota) and how it ended.' --time_partitioning_expiration=7776000 --clustering_fields=processor_name,game_date my-proj:nba_orchestration.streaming_conflict_log
fi

# [142] resource: table nba_orchestration.game_unavailable
if bq show --format=none my-proj:nba_orchestration.game_unavailable >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.game_unavailable.schema.json '--description=Games operators marked (phasectl mark-unavailable, phasectl games postpone|restore). kind NULL or '"'"'unavailable'"'"': excluded from coverage and completeness; '"'"'postponed'"'"': postponed (excluded, never retried); '"'"'restored'"'"': a detected postponement overridden (the game counts). Deleting a row (--undo, restore) counts the game again.' --clustering_fields=game_id my-proj:nba_orchestration.game_unavailable
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.game_unavailable.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=Games operators marked (phasectl mark-unavailable, phasectl games postpone|restore). kind NULL or '"'"'unavailable'"'"': excluded from coverage and completeness; '"'"'postponed'"'"': postponed (excluded, never retried); '"'"'restored'"'"': a detected postponement overridden (the game counts). Deleting a row (--undo, restore) counts the game again.' --clustering_fields=game_id my-proj:nba_orchestration.game_unavailable
fi

# [143] binding: phase2_to_phase3: roles/bigquery.dataViewer on table nba_orchestration.game_unavailable
bq add-iam-policy-binding --table --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_orchestration.game_unavailable

# [144] binding: phase2_to_phase3: roles/bigquery.dataViewer on table nba_raw.bdl_player_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.bdl_player_boxscores

# [145] binding: phase2_to_phase3: roles/bigquery.dataViewer on table nba_raw.espn_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.espn_boxscores

# [146] binding: phase2_to_phase3: roles/bigquery.dataViewer on table nba_raw.nbac_gamebook_player_stats
bq add-iam-policy-binding --table --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_gamebook_player_stats

# [147] binding: phase2_to_phase3: roles/bigquery.dataViewer on table nba_raw.nbac_schedule
bq add-iam-policy-binding --table --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_schedule

# [148] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_analytics.player_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.player_game_summary

# [149] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_analytics.team_defense_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.team_defense_game_summary

# [150] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_analytics.team_offense_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.team_offense_game_summary

# [151] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_analytics.upcoming_player_game_context
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.upcoming_player_game_context

# [152] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_analytics.upcoming_team_game_context
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.upcoming_team_game_context

# [153] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_orchestration.game_unavailable
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_orchestration.game_unavailable

# [154] binding: phase3_to_phase4: roles/bigquery.dataViewer on table nba_raw.nbac_schedule
bq add-iam-policy-binding --table --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_schedule

# [155] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_analytics.upcoming_player_game_context
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.upcoming_player_game_context

# [156] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_precompute.player_composite_factors
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_composite_factors

# [157] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_precompute.player_daily_cache
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_daily_cache

# [158] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_precompute.player_shot_zone_analysis
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_shot_zone_analysis

# [159] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_precompute.team_defense_zone_analysis
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.team_defense_zone_analysis

# [160] binding: phase4_to_phase5: roles/bigquery.dataViewer on table nba_predictions.ml_feature_store_v2
bq add-iam-policy-binding --table --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.ml_feature_store_v2

# [161] binding: phase_transition_monitor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.failed_processor_queue
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.failed_processor_queue

# [162] binding: phase_transition_monitor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.phase_execution_log
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.phase_execution_log

# [163] binding: phase_transition_monitor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.streaming_conflict_log
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.streaming_conflict_log

# [164] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_analytics.player_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.player_game_summary

# [165] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_analytics.team_defense_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.team_defense_game_summary

# [166] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_analytics.team_offense_game_summary
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.team_offense_game_summary

# [167] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_analytics.upcoming_player_game_context
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.upcoming_player_game_context

# [168] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_analytics.upcoming_team_game_context
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics.upcoming_team_game_context

# [169] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_orchestration.game_unavailable
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_orchestration.game_unavailable

# [170] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_precompute.player_composite_factors
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_composite_factors

# [171] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_precompute.player_daily_cache
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_daily_cache

# [172] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_precompute.player_shot_zone_analysis
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.player_shot_zone_analysis

# [173] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_precompute.team_defense_zone_analysis
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute.team_defense_zone_analysis

# [174] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_predictions.ml_feature_store_v2
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.ml_feature_store_v2

# [175] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_predictions.player_prop_predictions
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.player_prop_predictions

# [176] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_predictions.prediction_accuracy
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.prediction_accuracy

# [177] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_raw.bdl_player_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.bdl_player_boxscores

# [178] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_raw.espn_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.espn_boxscores

# [179] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_raw.nbac_gamebook_player_stats
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_gamebook_player_stats

# [180] binding: phase_transition_monitor: roles/bigquery.dataViewer on table nba_raw.nbac_schedule
bq add-iam-policy-binding --table --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_schedule

# [181] binding: auto_retry_processor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.failed_processor_queue
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.failed_processor_queue

# [182] binding: auto_retry_processor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.phase_execution_log
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.phase_execution_log

# [183] binding: auto_retry_processor: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.streaming_conflict_log
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.streaming_conflict_log

# [184] binding: auto_retry_processor: roles/bigquery.dataViewer on table nba_orchestration.game_unavailable
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_orchestration.game_unavailable

# [185] binding: auto_retry_processor: roles/bigquery.dataViewer on table nba_raw.bdl_player_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.bdl_player_boxscores

# [186] binding: auto_retry_processor: roles/bigquery.dataViewer on table nba_raw.espn_boxscores
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.espn_boxscores

# [187] binding: auto_retry_processor: roles/bigquery.dataViewer on table nba_raw.nbac_gamebook_player_stats
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_gamebook_player_stats

# [188] binding: auto_retry_processor: roles/bigquery.dataViewer on table nba_raw.nbac_schedule
bq add-iam-policy-binding --table --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_schedule

# [189] binding: schedule_dispatcher: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.phase_execution_log
bq add-iam-policy-binding --table --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.phase_execution_log

# [190] binding: grading_readiness: projects/my-proj/roles/phasechainTableWriter on table nba_orchestration.phase_execution_log
bq add-iam-policy-binding --table --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=projects/my-proj/roles/phasechainTableWriter my-proj:nba_orchestration.phase_execution_log

# [191] binding: grading_readiness: roles/bigquery.dataViewer on table nba_orchestration.game_unavailable
bq add-iam-policy-binding --table --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_orchestration.game_unavailable

# [192] binding: grading_readiness: roles/bigquery.dataViewer on table nba_predictions.player_prop_predictions
bq add-iam-policy-binding --table --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.player_prop_predictions

# [193] binding: grading_readiness: roles/bigquery.dataViewer on table nba_predictions.prediction_accuracy
bq add-iam-policy-binding --table --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions.prediction_accuracy

# [194] binding: grading_readiness: roles/bigquery.dataViewer on table nba_raw.nbac_schedule
bq add-iam-policy-binding --table --member=serviceAccount:grading-readiness@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw.nbac_schedule

# [195] resource: function phase2-to-phase3
gcloud functions deploy phase2-to-phase3 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase2_to_phase3 --trigger-topic=nba-phase2-raw-complete --retry --service-account=phase2-to-phase3@my-proj.iam.gserviceaccount.com --trigger-service-account=phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [196] lookup: phase2-to-phase3: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE2_TO_PHASE3="$(gcloud functions describe phase2-to-phase3 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [197] binding: phase2_to_phase3 (trigger identity): roles/run.invoker on service phase2-to-phase3
gcloud functions add-invoker-policy-binding phase2-to-phase3 --region=us-west2 --member=serviceAccount:phase2-to-phase3-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [198] lookup: phase2-to-phase3: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3="$(gcloud eventarc triggers describe "${TRIGGER_PHASE2_TO_PHASE3}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [199] binding: phase2-to-phase3: dead letters after 10 attempts to nba-phase2-raw-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3}" --dead-letter-topic=nba-phase2-raw-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [200] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of phase2_to_phase3
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [201] resource: function phase3-to-phase4
gcloud functions deploy phase3-to-phase4 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase3_to_phase4 --trigger-topic=nba-phase3-analytics-complete --retry --service-account=phase3-to-phase4@my-proj.iam.gserviceaccount.com --trigger-service-account=phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [202] lookup: phase3-to-phase4: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE3_TO_PHASE4="$(gcloud functions describe phase3-to-phase4 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [203] binding: phase3_to_phase4 (trigger identity): roles/run.invoker on service phase3-to-phase4
gcloud functions add-invoker-policy-binding phase3-to-phase4 --region=us-west2 --member=serviceAccount:phase3-to-phase4-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [204] lookup: phase3-to-phase4: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4="$(gcloud eventarc triggers describe "${TRIGGER_PHASE3_TO_PHASE4}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [205] binding: phase3-to-phase4: dead letters after 10 attempts to nba-phase3-analytics-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4}" --dead-letter-topic=nba-phase3-analytics-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [206] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of phase3_to_phase4
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [207] resource: function phase4-to-phase5
gcloud functions deploy phase4-to-phase5 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase4_to_phase5 --trigger-topic=nba-phase4-precompute-complete --retry --service-account=phase4-to-phase5@my-proj.iam.gserviceaccount.com --trigger-service-account=phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [208] lookup: phase4-to-phase5: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE4_TO_PHASE5="$(gcloud functions describe phase4-to-phase5 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [209] binding: phase4_to_phase5 (trigger identity): roles/run.invoker on service phase4-to-phase5
gcloud functions add-invoker-policy-binding phase4-to-phase5 --region=us-west2 --member=serviceAccount:phase4-to-phase5-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [210] lookup: phase4-to-phase5: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5="$(gcloud eventarc triggers describe "${TRIGGER_PHASE4_TO_PHASE5}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [211] binding: phase4-to-phase5: dead letters after 10 attempts to nba-phase4-precompute-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5}" --dead-letter-topic=nba-phase4-precompute-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [212] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of phase4_to_phase5
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [213] resource: function phase5-to-phase6
gcloud functions deploy phase5-to-phase6 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase5_to_phase6 --trigger-topic=nba-phase5-predictions-complete --retry --service-account=phase5-to-phase6@my-proj.iam.gserviceaccount.com --trigger-service-account=phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [214] lookup: phase5-to-phase6: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE5_TO_PHASE6="$(gcloud functions describe phase5-to-phase6 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [215] binding: phase5_to_phase6 (trigger identity): roles/run.invoker on service phase5-to-phase6
gcloud functions add-invoker-policy-binding phase5-to-phase6 --region=us-west2 --member=serviceAccount:phase5-to-phase6-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [216] lookup: phase5-to-phase6: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6="$(gcloud eventarc triggers describe "${TRIGGER_PHASE5_TO_PHASE6}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [217] binding: phase5-to-phase6: dead letters after 10 attempts to nba-phase5-predictions-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6}" --dead-letter-topic=nba-phase5-predictions-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [218] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of phase5_to_phase6
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [219] require: secret slack-webhook has a value (for phase-transition-monitor's MONITOR_SLACK_WEBHOOK_URL)
gcloud secrets versions describe latest --secret=slack-webhook --project=my-proj '--format=value(state)' | grep -Fx ENABLED >/dev/null || \
  { echo 'phasectl deploy: secret slack-webhook has no enabled version: set it with `phasectl deploy secret set slack-webhook --project my-proj` (reads the value from stdin), then apply again' >&2; exit 1; }

# [220] resource: function phase-transition-monitor
gcloud functions deploy phase-transition-monitor --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase_transition_monitor --trigger-topic=phase-transition-monitor-trigger --retry --service-account=phase-transition-monitor@my-proj.iam.gserviceaccount.com --trigger-service-account=phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=300s --min-instances=0 --max-instances=1 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --set-secrets=MONITOR_SLACK_WEBHOOK_URL=slack-webhook:latest --no-allow-unauthenticated --project=my-proj

# [221] lookup: phase-transition-monitor: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE_TRANSITION_MONITOR="$(gcloud functions describe phase-transition-monitor --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [222] binding: phase_transition_monitor (trigger identity): roles/run.invoker on service phase-transition-monitor
gcloud functions add-invoker-policy-binding phase-transition-monitor --region=us-west2 --member=serviceAccount:phase-transition-monitor-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [223] lookup: phase-transition-monitor: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR="$(gcloud eventarc triggers describe "${TRIGGER_PHASE_TRANSITION_MONITOR}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [224] binding: phase-transition-monitor: dead letters after 10 attempts to phase-transition-monitor-trigger-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR}" --dead-letter-topic=phase-transition-monitor-trigger-dlq --max-delivery-attempts=10 --project=my-proj

# [225] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of phase_transition_monitor
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [226] resource: function auto-retry-processor
gcloud functions deploy auto-retry-processor --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/auto_retry_processor --trigger-topic=auto-retry-trigger --retry --service-account=auto-retry-processor@my-proj.iam.gserviceaccount.com --trigger-service-account=auto-retry-processor-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=300s --min-instances=0 --max-instances=1 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [227] lookup: auto-retry-processor: its Eventarc trigger (named by the deploy)
TRIGGER_AUTO_RETRY_PROCESSOR="$(gcloud functions describe auto-retry-processor --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [228] binding: auto_retry_processor (trigger identity): roles/run.invoker on service auto-retry-processor
gcloud functions add-invoker-policy-binding auto-retry-processor --region=us-west2 --member=serviceAccount:auto-retry-processor-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [229] lookup: auto-retry-processor: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR="$(gcloud eventarc triggers describe "${TRIGGER_AUTO_RETRY_PROCESSOR}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [230] binding: auto-retry-processor: dead letters after 10 attempts to auto-retry-trigger-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR}" --dead-letter-topic=auto-retry-trigger-dlq --max-delivery-attempts=10 --project=my-proj

# [231] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of auto_retry_processor
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [232] resource: function schedule-dispatcher
gcloud functions deploy schedule-dispatcher --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/schedule_dispatcher --trigger-topic=schedule-dispatcher-tick --retry --service-account=schedule-dispatcher@my-proj.iam.gserviceaccount.com --trigger-service-account=schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=300s --min-instances=0 --max-instances=5 "--update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__,GOOGLE_CLOUD_PROJECT_NUMBER=${PROJECT_NUMBER}" --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [233] lookup: schedule-dispatcher: its Eventarc trigger (named by the deploy)
TRIGGER_SCHEDULE_DISPATCHER="$(gcloud functions describe schedule-dispatcher --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [234] binding: schedule_dispatcher (trigger identity): roles/run.invoker on service schedule-dispatcher
gcloud functions add-invoker-policy-binding schedule-dispatcher --region=us-west2 --member=serviceAccount:schedule-dispatcher-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [235] lookup: schedule-dispatcher: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_SCHEDULE_DISPATCHER="$(gcloud eventarc triggers describe "${TRIGGER_SCHEDULE_DISPATCHER}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [236] binding: schedule-dispatcher: dead letters after 10 attempts to schedule-dispatcher-tick-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_SCHEDULE_DISPATCHER}" --dead-letter-topic=schedule-dispatcher-tick-dlq --max-delivery-attempts=10 --project=my-proj

# [237] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of schedule_dispatcher
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_SCHEDULE_DISPATCHER}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [238] resource: function grading-readiness
gcloud functions deploy grading-readiness --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/grading_readiness --trigger-topic=grading-readiness-tick --retry --service-account=grading-readiness@my-proj.iam.gserviceaccount.com --trigger-service-account=grading-readiness-inv@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__ --remove-env-vars=MONITOR_SLACK_WEBHOOK_URL --clear-secrets --no-allow-unauthenticated --project=my-proj

# [239] lookup: grading-readiness: its Eventarc trigger (named by the deploy)
TRIGGER_GRADING_READINESS="$(gcloud functions describe grading-readiness --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [240] binding: grading_readiness (trigger identity): roles/run.invoker on service grading-readiness
gcloud functions add-invoker-policy-binding grading-readiness --region=us-west2 --member=serviceAccount:grading-readiness-inv@my-proj.iam.gserviceaccount.com --project=my-proj

# [241] lookup: grading-readiness: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_GRADING_READINESS="$(gcloud eventarc triggers describe "${TRIGGER_GRADING_READINESS}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [242] binding: grading-readiness: dead letters after 10 attempts to grading-readiness-tick-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_GRADING_READINESS}" --dead-letter-topic=grading-readiness-tick-dlq --max-delivery-attempts=10 --project=my-proj

# [243] binding: Pub/Sub service agent: roles/pubsub.subscriber on the Eventarc subscription of grading_readiness
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_GRADING_READINESS}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [244] require: Cloud Run service bias-decay-monitor exists (called by schedule-dispatcher's jobs)
gcloud run services describe bias-decay-monitor --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx bias-decay-monitor >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service bias-decay-monitor does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [245] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service bias-decay-monitor
gcloud run services add-iam-policy-binding bias-decay-monitor --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [246] require: Cloud Run service check-missing exists (called by schedule-dispatcher's jobs)
gcloud run services describe check-missing --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx check-missing >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service check-missing does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [247] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service check-missing
gcloud run services add-iam-policy-binding check-missing --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [248] require: Cloud Run service decay-detection exists (called by schedule-dispatcher's jobs)
gcloud run services describe decay-detection --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx decay-detection >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service decay-detection does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [249] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service decay-detection
gcloud run services add-iam-policy-binding decay-detection --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [250] require: Cloud Run service grading-gap-detector exists (called by schedule-dispatcher's jobs)
gcloud run services describe grading-gap-detector --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx grading-gap-detector >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service grading-gap-detector does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [251] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service grading-gap-detector
gcloud run services add-iam-policy-binding grading-gap-detector --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [252] require: Cloud Run service live-export exists (called by schedule-dispatcher's jobs)
gcloud run services describe live-export --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx live-export >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service live-export does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [253] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service live-export
gcloud run services add-iam-policy-binding live-export --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [254] require: Cloud Run service nba-phase2-raw-processors exists (called by schedule-dispatcher's jobs)
gcloud run services describe nba-phase2-raw-processors --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx nba-phase2-raw-processors >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service nba-phase2-raw-processors does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [255] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service nba-phase2-raw-processors
gcloud run services add-iam-policy-binding nba-phase2-raw-processors --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [256] require: Cloud Run service nba-phase3-analytics-processors exists (called by schedule-dispatcher's jobs)
gcloud run services describe nba-phase3-analytics-processors --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx nba-phase3-analytics-processors >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service nba-phase3-analytics-processors does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [257] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service nba-phase3-analytics-processors
gcloud run services add-iam-policy-binding nba-phase3-analytics-processors --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [258] require: Cloud Run service nba-phase4-precompute-processors exists (called by schedule-dispatcher's jobs)
gcloud run services describe nba-phase4-precompute-processors --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx nba-phase4-precompute-processors >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service nba-phase4-precompute-processors does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [259] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service nba-phase4-precompute-processors
gcloud run services add-iam-policy-binding nba-phase4-precompute-processors --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [260] require: Cloud Run service prediction-coordinator exists (called by schedule-dispatcher's jobs)
gcloud run services describe prediction-coordinator --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx prediction-coordinator >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service prediction-coordinator does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [261] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service prediction-coordinator
gcloud run services add-iam-policy-binding prediction-coordinator --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [262] require: Cloud Run service signal-weight-report exists (called by schedule-dispatcher's jobs)
gcloud run services describe signal-weight-report --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx signal-weight-report >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service signal-weight-report does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [263] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service signal-weight-report
gcloud run services add-iam-policy-binding signal-weight-report --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [264] require: Cloud Run service validation-runner exists (called by schedule-dispatcher's jobs)
gcloud run services describe validation-runner --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx validation-runner >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service validation-runner does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [265] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service validation-runner
gcloud run services add-iam-policy-binding validation-runner --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [266] require: Cloud Run service weekly-retrain exists (called by schedule-dispatcher's jobs)
gcloud run services describe weekly-retrain --region=us-west2 --project=my-proj '--format=value(metadata.name)' | grep -Fx weekly-retrain >/dev/null || \
  { echo 'phasectl deploy: Cloud Run service weekly-retrain does not exist in us-west2 (project my-proj): the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the definition), then apply again' >&2; exit 1; }

# [267] binding: schedule_dispatcher: roles/run.invoker on Cloud Run service weekly-retrain
gcloud run services add-iam-policy-binding weekly-retrain --region=us-west2 --member=serviceAccount:schedule-dispatcher@my-proj.iam.gserviceaccount.com --role=roles/run.invoker --project=my-proj

# [268] resource: scheduler job phase-transition-monitor
if gcloud scheduler jobs describe phase-transition-monitor --location=us-west2 --project=my-proj >/dev/null 2>&1; then
  gcloud scheduler jobs update pubsub phase-transition-monitor --location=us-west2 '--schedule=*/10 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/phase-transition-monitor-trigger '--message-body={"check":"transitions","dry_run":false,"season":false}' --project=my-proj
else
  gcloud scheduler jobs create pubsub phase-transition-monitor --location=us-west2 '--schedule=*/10 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/phase-transition-monitor-trigger '--message-body={"check":"transitions","dry_run":false,"season":false}' --project=my-proj
fi

# [269] resource: scheduler job auto-retry-processor-trigger
if gcloud scheduler jobs describe auto-retry-processor-trigger --location=us-west2 --project=my-proj >/dev/null 2>&1; then
  gcloud scheduler jobs update pubsub auto-retry-processor-trigger --location=us-west2 '--schedule=*/15 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/auto-retry-trigger '--message-body={"max_rows":50,"dry_run":false,"outbox_only":false}' --project=my-proj
else
  gcloud scheduler jobs create pubsub auto-retry-processor-trigger --location=us-west2 '--schedule=*/15 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/auto-retry-trigger '--message-body={"max_rows":50,"dry_run":false,"outbox_only":false}' --project=my-proj
fi

# [270] resource: scheduler job schedule-dispatcher-tick
if gcloud scheduler jobs describe schedule-dispatcher-tick --location=us-west2 --project=my-proj >/dev/null 2>&1; then
  gcloud scheduler jobs update pubsub schedule-dispatcher-tick --location=us-west2 '--schedule=* * * * *' --time-zone=UTC --topic=projects/my-proj/topics/schedule-dispatcher-tick '--message-body={"force":false}' --project=my-proj
else
  gcloud scheduler jobs create pubsub schedule-dispatcher-tick --location=us-west2 '--schedule=* * * * *' --time-zone=UTC --topic=projects/my-proj/topics/schedule-dispatcher-tick '--message-body={"force":false}' --project=my-proj
fi
