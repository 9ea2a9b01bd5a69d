#!/usr/bin/env bash
# phasectl deploy plan — project my-proj, region us-west2
# Each resource: describe; create when missing, else update (phasectl deploy apply does this).
# Table schemas are written to build/deploy/bigquery/ and bundles to build/ by apply.
set -euo pipefail

# [1] binding: enable APIs
gcloud services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com cloudscheduler.googleapis.com bigquery.googleapis.com firestore.googleapis.com iam.googleapis.com logging.googleapis.com --project=my-proj

# [2] lookup: project number (for the Pub/Sub service agent)
PROJECT_NUMBER="$(gcloud projects describe my-proj '--format=value(projectNumber)')"

# [3] resource: Firestore database (default)
gcloud firestore databases describe '--database=(default)' --project=my-proj >/dev/null 2>&1 || \
  gcloud firestore databases create '--database=(default)' --location=nam5 --type=firestore-native --project=my-proj

# [4] binding: Pub/Sub service agent may mint tokens for push/Eventarc delivery
gcloud projects add-iam-policy-binding my-proj "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/iam.serviceAccountTokenCreator --condition=None

# [5] ensure: Firestore TTL policy phase_transitions.expires_at (400 days; the transition functions: one document per transition and date)
gcloud firestore fields ttls list --collection-group=phase_transitions --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=phase_transitions --enable-ttl --project=my-proj --async

# [6] ensure: Firestore TTL policy completions.expires_at (400 days; the transition functions: phase_transitions/*/completions)
gcloud firestore fields ttls list --collection-group=completions --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=completions --enable-ttl --project=my-proj --async

# [7] ensure: Firestore TTL policy phase_execution_log_outbox.expires_at (30 days; the transition functions: log rows and hand-offs not yet delivered)
gcloud firestore fields ttls list --collection-group=phase_execution_log_outbox --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=phase_execution_log_outbox --enable-ttl --project=my-proj --async

# [8] ensure: Firestore TTL policy quarantine.expires_at (30 days; every function: bad or stale input)
gcloud firestore fields ttls list --collection-group=quarantine --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=quarantine --enable-ttl --project=my-proj --async

# [9] ensure: Firestore TTL policy monitor_alerts.expires_at (30 days; the monitor: deduplicated findings)
gcloud firestore fields ttls list --collection-group=monitor_alerts --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=monitor_alerts --enable-ttl --project=my-proj --async

# [10] ensure: Firestore TTL policy operator_audit.expires_at (400 days; phasectl: the operator audit)
gcloud firestore fields ttls list --collection-group=operator_audit --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=operator_audit --enable-ttl --project=my-proj --async

# [11] ensure: Firestore TTL policy trigger_inbox.expires_at (30 days; consumers: shared.client.TriggerInbox entries)
gcloud firestore fields ttls list --collection-group=trigger_inbox --project=my-proj '--format=value(name.basename())' | grep -Fx expires_at >/dev/null || \
  gcloud firestore fields ttls update expires_at --collection-group=trigger_inbox --enable-ttl --project=my-proj --async

# [12] resource: service account phase2-to-phase3@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase2-to-phase3@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase2-to-phase3 '--display-name=phasechain phase2_to_phase3' --project=my-proj

# [13] binding: phase2_to_phase3: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [14] binding: phase2_to_phase3: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [15] binding: phase2_to_phase3: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [16] resource: service account phase3-to-phase4@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase3-to-phase4@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase3-to-phase4 '--display-name=phasechain phase3_to_phase4' --project=my-proj

# [17] binding: phase3_to_phase4: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [18] binding: phase3_to_phase4: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [19] binding: phase3_to_phase4: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [20] resource: service account phase4-to-phase5@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase4-to-phase5@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase4-to-phase5 '--display-name=phasechain phase4_to_phase5' --project=my-proj

# [21] binding: phase4_to_phase5: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [22] binding: phase4_to_phase5: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [23] binding: phase4_to_phase5: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [24] resource: service account phase5-to-phase6@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase5-to-phase6@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase5-to-phase6 '--display-name=phasechain phase5_to_phase6' --project=my-proj

# [25] binding: phase5_to_phase6: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [26] binding: phase5_to_phase6: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [27] binding: phase5_to_phase6: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [28] resource: service account phase-transition-monitor@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe phase-transition-monitor@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create phase-transition-monitor '--display-name=phasechain phase_transition_monitor' --project=my-proj

# [29] binding: phase_transition_monitor: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [30] binding: phase_transition_monitor: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [31] binding: phase_transition_monitor: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [32] resource: service account auto-retry-processor@my-proj.iam.gserviceaccount.com
gcloud iam service-accounts describe auto-retry-processor@my-proj.iam.gserviceaccount.com --project=my-proj >/dev/null 2>&1 || \
  gcloud iam service-accounts create auto-retry-processor '--display-name=phasechain auto_retry_processor' --project=my-proj

# [33] binding: auto_retry_processor: roles/bigquery.jobUser
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.jobUser --condition=None

# [34] binding: auto_retry_processor: roles/datastore.user
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/datastore.user --condition=None

# [35] binding: auto_retry_processor: roles/logging.logWriter
gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/logging.logWriter --condition=None

# [36] resource: topic auto-retry-trigger
gcloud pubsub topics describe auto-retry-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create auto-retry-trigger --project=my-proj

# [37] resource: topic auto-retry-trigger-dlq
gcloud pubsub topics describe auto-retry-trigger-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create auto-retry-trigger-dlq --project=my-proj

# [38] resource: topic nba-phase2-raw-complete
gcloud pubsub topics describe nba-phase2-raw-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-raw-complete --project=my-proj

# [39] resource: topic nba-phase2-raw-complete-dlq
gcloud pubsub topics describe nba-phase2-raw-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-raw-complete-dlq --project=my-proj

# [40] resource: topic nba-phase2-retry
gcloud pubsub topics describe nba-phase2-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase2-retry --project=my-proj

# [41] resource: topic nba-phase3-analytics-complete
gcloud pubsub topics describe nba-phase3-analytics-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-analytics-complete --project=my-proj

# [42] resource: topic nba-phase3-analytics-complete-dlq
gcloud pubsub topics describe nba-phase3-analytics-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-analytics-complete-dlq --project=my-proj

# [43] resource: topic nba-phase3-retry
gcloud pubsub topics describe nba-phase3-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-retry --project=my-proj

# [44] resource: topic nba-phase3-trigger
gcloud pubsub topics describe nba-phase3-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase3-trigger --project=my-proj

# [45] resource: topic nba-phase4-precompute-complete
gcloud pubsub topics describe nba-phase4-precompute-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-precompute-complete --project=my-proj

# [46] resource: topic nba-phase4-precompute-complete-dlq
gcloud pubsub topics describe nba-phase4-precompute-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-precompute-complete-dlq --project=my-proj

# [47] resource: topic nba-phase4-retry
gcloud pubsub topics describe nba-phase4-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-retry --project=my-proj

# [48] resource: topic nba-phase4-trigger
gcloud pubsub topics describe nba-phase4-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase4-trigger --project=my-proj

# [49] resource: topic nba-phase5-predictions-complete
gcloud pubsub topics describe nba-phase5-predictions-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-predictions-complete --project=my-proj

# [50] resource: topic nba-phase5-predictions-complete-dlq
gcloud pubsub topics describe nba-phase5-predictions-complete-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-predictions-complete-dlq --project=my-proj

# [51] resource: topic nba-phase5-retry
gcloud pubsub topics describe nba-phase5-retry --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase5-retry --project=my-proj

# [52] resource: topic nba-phase6-export-complete
gcloud pubsub topics describe nba-phase6-export-complete --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase6-export-complete --project=my-proj

# [53] resource: topic nba-phase6-export-trigger
gcloud pubsub topics describe nba-phase6-export-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-phase6-export-trigger --project=my-proj

# [54] resource: topic nba-predictions-trigger
gcloud pubsub topics describe nba-predictions-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create nba-predictions-trigger --project=my-proj

# [55] resource: topic phase-transition-monitor-trigger
gcloud pubsub topics describe phase-transition-monitor-trigger --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create phase-transition-monitor-trigger --project=my-proj

# [56] resource: topic phase-transition-monitor-trigger-dlq
gcloud pubsub topics describe phase-transition-monitor-trigger-dlq --project=my-proj >/dev/null 2>&1 || \
  gcloud pubsub topics create phase-transition-monitor-trigger-dlq --project=my-proj

# [57] binding: phase2_to_phase3 may publish to nba-phase3-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase3-trigger --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [58] resource: dead-letter subscription phase2-to-phase3-dlq-sub
if gcloud pubsub subscriptions describe phase2-to-phase3-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase2-to-phase3-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase2-to-phase3-dlq-sub --topic=nba-phase2-raw-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [59] binding: Pub/Sub service agent may dead-letter into nba-phase2-raw-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase2-raw-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [60] binding: phase3_to_phase4 may publish to nba-phase4-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase4-trigger --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [61] resource: dead-letter subscription phase3-to-phase4-dlq-sub
if gcloud pubsub subscriptions describe phase3-to-phase4-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase3-to-phase4-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase3-to-phase4-dlq-sub --topic=nba-phase3-analytics-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [62] binding: Pub/Sub service agent may dead-letter into nba-phase3-analytics-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase3-analytics-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [63] binding: phase4_to_phase5 may publish to nba-predictions-trigger
gcloud pubsub topics add-iam-policy-binding nba-predictions-trigger --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [64] resource: dead-letter subscription phase4-to-phase5-dlq-sub
if gcloud pubsub subscriptions describe phase4-to-phase5-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase4-to-phase5-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase4-to-phase5-dlq-sub --topic=nba-phase4-precompute-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [65] binding: Pub/Sub service agent may dead-letter into nba-phase4-precompute-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase4-precompute-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [66] binding: phase5_to_phase6 may publish to nba-phase6-export-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase6-export-trigger --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [67] resource: dead-letter subscription phase5-to-phase6-dlq-sub
if gcloud pubsub subscriptions describe phase5-to-phase6-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase5-to-phase6-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase5-to-phase6-dlq-sub --topic=nba-phase5-predictions-complete-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [68] binding: Pub/Sub service agent may dead-letter into nba-phase5-predictions-complete-dlq
gcloud pubsub topics add-iam-policy-binding nba-phase5-predictions-complete-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [69] binding: phase_transition_monitor may publish to nba-phase3-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase3-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [70] binding: phase_transition_monitor may publish to nba-phase4-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase4-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [71] binding: phase_transition_monitor may publish to nba-phase6-export-trigger
gcloud pubsub topics add-iam-policy-binding nba-phase6-export-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [72] binding: phase_transition_monitor may publish to nba-predictions-trigger
gcloud pubsub topics add-iam-policy-binding nba-predictions-trigger --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [73] resource: dead-letter subscription phase-transition-monitor-dlq-sub
if gcloud pubsub subscriptions describe phase-transition-monitor-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update phase-transition-monitor-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create phase-transition-monitor-dlq-sub --topic=phase-transition-monitor-trigger-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [74] binding: Pub/Sub service agent may dead-letter into phase-transition-monitor-trigger-dlq
gcloud pubsub topics add-iam-policy-binding phase-transition-monitor-trigger-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [75] binding: auto_retry_processor may publish to nba-phase2-retry
gcloud pubsub topics add-iam-policy-binding nba-phase2-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [76] binding: auto_retry_processor may publish to nba-phase3-retry
gcloud pubsub topics add-iam-policy-binding nba-phase3-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [77] binding: auto_retry_processor may publish to nba-phase4-retry
gcloud pubsub topics add-iam-policy-binding nba-phase4-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [78] binding: auto_retry_processor may publish to nba-phase5-retry
gcloud pubsub topics add-iam-policy-binding nba-phase5-retry --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.publisher --project=my-proj

# [79] resource: dead-letter subscription auto-retry-processor-dlq-sub
if gcloud pubsub subscriptions describe auto-retry-processor-dlq-sub --project=my-proj >/dev/null 2>&1; then
  gcloud pubsub subscriptions update auto-retry-processor-dlq-sub --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
else
  gcloud pubsub subscriptions create auto-retry-processor-dlq-sub --topic=auto-retry-trigger-dlq --message-retention-duration=7d --ack-deadline=60 --expiration-period=never --project=my-proj
fi

# [80] binding: Pub/Sub service agent may dead-letter into auto-retry-trigger-dlq
gcloud pubsub topics add-iam-policy-binding auto-retry-trigger-dlq "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.publisher --project=my-proj

# [81] binding: phase_transition_monitor may read phase2-to-phase3-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding phase2-to-phase3-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [82] binding: phase_transition_monitor may read phase3-to-phase4-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding phase3-to-phase4-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [83] binding: phase_transition_monitor may read phase4-to-phase5-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding phase4-to-phase5-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [84] binding: phase_transition_monitor may read phase5-to-phase6-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding phase5-to-phase6-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [85] binding: phase_transition_monitor may read phase-transition-monitor-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding phase-transition-monitor-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [86] binding: phase_transition_monitor may read auto-retry-processor-dlq-sub (its backlog)
gcloud pubsub subscriptions add-iam-policy-binding auto-retry-processor-dlq-sub --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/pubsub.subscriber --project=my-proj

# [87] resource: dataset nba_orchestration
bq show --format=none --dataset my-proj:nba_orchestration >/dev/null 2>&1 || \
  bq --location=US mk --dataset my-proj:nba_orchestration

# [88] resource: table nba_orchestration.phase_execution_log
if bq show --format=none my-proj:nba_orchestration.phase_execution_log >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.phase_execution_log.schema.json '--description=One row per transition outcome (complete | partial | deadline_exceeded | blocked). Written through a Firestore outbox: a BigQuery outage delays rows, never loses them.' --clustering_fields=phase_name,status my-proj:nba_orchestration.phase_execution_log
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.phase_execution_log.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=One row per transition outcome (complete | partial | deadline_exceeded | blocked). Written through a Firestore outbox: a BigQuery outage delays rows, never loses them.' --clustering_fields=phase_name,status my-proj:nba_orchestration.phase_execution_log
fi

# [89] resource: table nba_orchestration.failed_processor_queue
if bq show --format=none my-proj:nba_orchestration.failed_processor_queue >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.failed_processor_queue.schema.json '--description=Failed processor runs awaiting auto-retry. One open row (pending|retrying) or terminal failed_permanent row per phase+processor_name+game_date; failed_permanent stays terminal until an operator requeues it.' --time_partitioning_expiration=34560000 --clustering_fields=status,processor_name my-proj:nba_orchestration.failed_processor_queue
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.failed_processor_queue.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=Failed processor runs awaiting auto-retry. One open row (pending|retrying) or terminal failed_permanent row per phase+processor_name+game_date; failed_permanent stays terminal until an operator requeues it.' --time_partitioning_expiration=34560000 --clustering_fields=status,processor_name my-proj:nba_orchestration.failed_processor_queue
fi

# [90] resource: table nba_orchestration.streaming_conflict_log
if bq show --format=none my-proj:nba_orchestration.streaming_conflict_log >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.streaming_conflict_log.schema.json '--description=Every DML conflict the retry queue met (streaming buffer, concurrent DML, quota) and how it ended.' --time_partitioning_expiration=7776000 --clustering_fields=processor_name,game_date my-proj:nba_orchestration.streaming_conflict_log
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.streaming_conflict_log.schema.json --time_partitioning_type=DAY --time_partitioning_field=timestamp '--description=Every DML conflict the retry queue met (streaming buffer, concurrent DML, quota) and how it ended.' --time_partitioning_expiration=7776000 --clustering_fields=processor_name,game_date my-proj:nba_orchestration.streaming_conflict_log
fi

# [91] resource: table nba_orchestration.game_unavailable
if bq show --format=none my-proj:nba_orchestration.game_unavailable >/dev/null 2>&1; then
  bq update --table --schema=build/deploy/bigquery/nba_orchestration.game_unavailable.schema.json '--description=Games an operator marked unavailable (phasectl mark-unavailable): excluded from coverage and completeness. Deleting a row (--undo) counts the game again.' --clustering_fields=game_id my-proj:nba_orchestration.game_unavailable
else
  bq mk --table --schema=build/deploy/bigquery/nba_orchestration.game_unavailable.schema.json --time_partitioning_type=DAY --time_partitioning_field=game_date '--description=Games an operator marked unavailable (phasectl mark-unavailable): excluded from coverage and completeness. Deleting a row (--undo) counts the game again.' --clustering_fields=game_id my-proj:nba_orchestration.game_unavailable
fi

# [92] binding: phase2_to_phase3: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [93] binding: phase2_to_phase3: roles/bigquery.dataViewer on nba_raw
bq add-iam-policy-binding --dataset --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw

# [94] binding: phase3_to_phase4: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [95] binding: phase3_to_phase4: roles/bigquery.dataViewer on nba_analytics
bq add-iam-policy-binding --dataset --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics

# [96] binding: phase3_to_phase4: roles/bigquery.dataViewer on nba_raw
bq add-iam-policy-binding --dataset --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw

# [97] binding: phase4_to_phase5: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [98] binding: phase4_to_phase5: roles/bigquery.dataViewer on nba_analytics
bq add-iam-policy-binding --dataset --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics

# [99] binding: phase4_to_phase5: roles/bigquery.dataViewer on nba_precompute
bq add-iam-policy-binding --dataset --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute

# [100] binding: phase4_to_phase5: roles/bigquery.dataViewer on nba_predictions
bq add-iam-policy-binding --dataset --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions

# [101] binding: phase5_to_phase6: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [102] binding: phase_transition_monitor: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [103] binding: phase_transition_monitor: roles/bigquery.dataViewer on nba_analytics
bq add-iam-policy-binding --dataset --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_analytics

# [104] binding: phase_transition_monitor: roles/bigquery.dataViewer on nba_precompute
bq add-iam-policy-binding --dataset --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_precompute

# [105] binding: phase_transition_monitor: roles/bigquery.dataViewer on nba_predictions
bq add-iam-policy-binding --dataset --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_predictions

# [106] binding: phase_transition_monitor: roles/bigquery.dataViewer on nba_raw
bq add-iam-policy-binding --dataset --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataViewer my-proj:nba_raw

# [107] binding: auto_retry_processor: roles/bigquery.dataEditor on nba_orchestration
bq add-iam-policy-binding --dataset --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --role=roles/bigquery.dataEditor my-proj:nba_orchestration

# [108] resource: function phase2-to-phase3
gcloud functions deploy phase2-to-phase3 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase2_to_phase3 --trigger-topic=nba-phase2-raw-complete --retry --service-account=phase2-to-phase3@my-proj.iam.gserviceaccount.com --trigger-service-account=phase2-to-phase3@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [109] lookup: phase2-to-phase3: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE2_TO_PHASE3="$(gcloud functions describe phase2-to-phase3 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [110] binding: phase2-to-phase3: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding phase2-to-phase3 --region=us-west2 --member=serviceAccount:phase2-to-phase3@my-proj.iam.gserviceaccount.com --project=my-proj

# [111] lookup: phase2-to-phase3: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3="$(gcloud eventarc triggers describe "${TRIGGER_PHASE2_TO_PHASE3}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [112] binding: phase2-to-phase3: dead letters after 10 attempts to nba-phase2-raw-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3}" --dead-letter-topic=nba-phase2-raw-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [113] binding: phase2-to-phase3: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE2_TO_PHASE3}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [114] resource: function phase3-to-phase4
gcloud functions deploy phase3-to-phase4 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase3_to_phase4 --trigger-topic=nba-phase3-analytics-complete --retry --service-account=phase3-to-phase4@my-proj.iam.gserviceaccount.com --trigger-service-account=phase3-to-phase4@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [115] lookup: phase3-to-phase4: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE3_TO_PHASE4="$(gcloud functions describe phase3-to-phase4 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [116] binding: phase3-to-phase4: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding phase3-to-phase4 --region=us-west2 --member=serviceAccount:phase3-to-phase4@my-proj.iam.gserviceaccount.com --project=my-proj

# [117] lookup: phase3-to-phase4: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4="$(gcloud eventarc triggers describe "${TRIGGER_PHASE3_TO_PHASE4}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [118] binding: phase3-to-phase4: dead letters after 10 attempts to nba-phase3-analytics-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4}" --dead-letter-topic=nba-phase3-analytics-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [119] binding: phase3-to-phase4: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE3_TO_PHASE4}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [120] resource: function phase4-to-phase5
gcloud functions deploy phase4-to-phase5 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase4_to_phase5 --trigger-topic=nba-phase4-precompute-complete --retry --service-account=phase4-to-phase5@my-proj.iam.gserviceaccount.com --trigger-service-account=phase4-to-phase5@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [121] lookup: phase4-to-phase5: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE4_TO_PHASE5="$(gcloud functions describe phase4-to-phase5 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [122] binding: phase4-to-phase5: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding phase4-to-phase5 --region=us-west2 --member=serviceAccount:phase4-to-phase5@my-proj.iam.gserviceaccount.com --project=my-proj

# [123] lookup: phase4-to-phase5: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5="$(gcloud eventarc triggers describe "${TRIGGER_PHASE4_TO_PHASE5}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [124] binding: phase4-to-phase5: dead letters after 10 attempts to nba-phase4-precompute-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5}" --dead-letter-topic=nba-phase4-precompute-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [125] binding: phase4-to-phase5: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE4_TO_PHASE5}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [126] resource: function phase5-to-phase6
gcloud functions deploy phase5-to-phase6 --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase5_to_phase6 --trigger-topic=nba-phase5-predictions-complete --retry --service-account=phase5-to-phase6@my-proj.iam.gserviceaccount.com --trigger-service-account=phase5-to-phase6@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=120s --min-instances=0 --max-instances=10 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [127] lookup: phase5-to-phase6: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE5_TO_PHASE6="$(gcloud functions describe phase5-to-phase6 --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [128] binding: phase5-to-phase6: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding phase5-to-phase6 --region=us-west2 --member=serviceAccount:phase5-to-phase6@my-proj.iam.gserviceaccount.com --project=my-proj

# [129] lookup: phase5-to-phase6: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6="$(gcloud eventarc triggers describe "${TRIGGER_PHASE5_TO_PHASE6}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [130] binding: phase5-to-phase6: dead letters after 10 attempts to nba-phase5-predictions-complete-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6}" --dead-letter-topic=nba-phase5-predictions-complete-dlq --max-delivery-attempts=10 --project=my-proj

# [131] binding: phase5-to-phase6: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE5_TO_PHASE6}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [132] resource: function phase-transition-monitor
gcloud functions deploy phase-transition-monitor --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/phase_transition_monitor --trigger-topic=phase-transition-monitor-trigger --retry --service-account=phase-transition-monitor@my-proj.iam.gserviceaccount.com --trigger-service-account=phase-transition-monitor@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=300s --min-instances=0 --max-instances=1 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [133] lookup: phase-transition-monitor: its Eventarc trigger (named by the deploy)
TRIGGER_PHASE_TRANSITION_MONITOR="$(gcloud functions describe phase-transition-monitor --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [134] binding: phase-transition-monitor: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding phase-transition-monitor --region=us-west2 --member=serviceAccount:phase-transition-monitor@my-proj.iam.gserviceaccount.com --project=my-proj

# [135] lookup: phase-transition-monitor: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR="$(gcloud eventarc triggers describe "${TRIGGER_PHASE_TRANSITION_MONITOR}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [136] binding: phase-transition-monitor: dead letters after 10 attempts to phase-transition-monitor-trigger-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR}" --dead-letter-topic=phase-transition-monitor-trigger-dlq --max-delivery-attempts=10 --project=my-proj

# [137] binding: phase-transition-monitor: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_PHASE_TRANSITION_MONITOR}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [138] resource: function auto-retry-processor
gcloud functions deploy auto-retry-processor --gen2 --region=us-west2 --runtime=python312 --entry-point=handle --source=build/auto_retry_processor --trigger-topic=auto-retry-trigger --retry --service-account=auto-retry-processor@my-proj.iam.gserviceaccount.com --trigger-service-account=auto-retry-processor@my-proj.iam.gserviceaccount.com --memory=512Mi --timeout=300s --min-instances=0 --max-instances=1 --update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj --no-allow-unauthenticated --project=my-proj

# [139] lookup: auto-retry-processor: its Eventarc trigger (named by the deploy)
TRIGGER_AUTO_RETRY_PROCESSOR="$(gcloud functions describe auto-retry-processor --gen2 --region=us-west2 --project=my-proj '--format=value(eventTrigger.trigger)')"

# [140] binding: auto-retry-processor: its trigger identity may invoke it (lesson L06)
gcloud functions add-invoker-policy-binding auto-retry-processor --region=us-west2 --member=serviceAccount:auto-retry-processor@my-proj.iam.gserviceaccount.com --project=my-proj

# [141] lookup: auto-retry-processor: the subscription Eventarc made for its trigger
TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR="$(gcloud eventarc triggers describe "${TRIGGER_AUTO_RETRY_PROCESSOR}" --location=us-west2 --project=my-proj '--format=value(transport.pubsub.subscription)')"

# [142] binding: auto-retry-processor: dead letters after 10 attempts to auto-retry-trigger-dlq
gcloud pubsub subscriptions update "${TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR}" --dead-letter-topic=auto-retry-trigger-dlq --max-delivery-attempts=10 --project=my-proj

# [143] binding: auto-retry-processor: Pub/Sub service agent may dead-letter from its trigger subscription
gcloud pubsub subscriptions add-iam-policy-binding "${TRIGGER_SUBSCRIPTION_AUTO_RETRY_PROCESSOR}" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" --role=roles/pubsub.subscriber --project=my-proj

# [144] resource: scheduler job phase-transition-monitor
if gcloud scheduler jobs describe phase-transition-monitor --location=us-west2 --project=my-proj >/dev/null 2>&1; then
  gcloud scheduler jobs update pubsub phase-transition-monitor --location=us-west2 '--schedule=*/10 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/phase-transition-monitor-trigger '--message-body={"check":"transitions","dry_run":false}' --project=my-proj
else
  gcloud scheduler jobs create pubsub phase-transition-monitor --location=us-west2 '--schedule=*/10 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/phase-transition-monitor-trigger '--message-body={"check":"transitions","dry_run":false}' --project=my-proj
fi

# [145] resource: scheduler job auto-retry-processor-trigger
if gcloud scheduler jobs describe auto-retry-processor-trigger --location=us-west2 --project=my-proj >/dev/null 2>&1; then
  gcloud scheduler jobs update pubsub auto-retry-processor-trigger --location=us-west2 '--schedule=*/15 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/auto-retry-trigger '--message-body={"max_rows":50,"dry_run":false}' --project=my-proj
else
  gcloud scheduler jobs create pubsub auto-retry-processor-trigger --location=us-west2 '--schedule=*/15 * * * *' --time-zone=America/New_York --topic=projects/my-proj/topics/auto-retry-trigger '--message-body={"max_rows":50,"dry_run":false}' --project=my-proj
fi
