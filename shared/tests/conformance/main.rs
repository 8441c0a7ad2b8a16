//! Store conformance: one suite per port (`suite/`), written once and run against every
//! adapter. Each backend is one `conformance_suite!` line: a module name and an async
//! expression that builds a fresh, empty `Backend` (called once per test).
//!
//! `sqlite.rs` holds the embedded backend's own queue operations, which have no port; they
//! run against both SQLite flavours through `sqlite_suite!`.

mod backend;
mod fixtures;
mod sqlite;
mod suite;

/// Expands `module: [test, ...]` lists into `#[tokio::test]`s calling
/// `$path::module::test($factory.await)`.
macro_rules! expand_tests {
    ($path:path, $factory:expr; $($module:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                $(
                    #[tokio::test]
                    async fn $test() {
                        use $path as suite;
                        suite::$module::$test($factory.await).await;
                    }
                )*
            }
        )*
    };
}

/// Every port test, for one backend.
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            expand_tests! {
                crate::suite, $factory;
                jobs: [
                    every_field_of_a_job_round_trips,
                    an_unknown_job_is_not_found,
                    a_job_of_another_team_is_invisible,
                    a_teams_job_count_follows_its_creates_and_deletes,
                    another_team_cannot_update_a_job,
                    another_team_cannot_delete_a_job,
                    jobs_are_listed_newest_first,
                    paging_through_jobs_returns_each_exactly_once,
                    a_full_last_page_has_no_next_cursor,
                    a_list_without_a_limit_returns_every_job,
                    count_counts_only_the_teams_jobs,
                    an_update_at_the_expected_version_writes_definition_and_state,
                    an_update_with_a_stale_version_conflicts_and_changes_nothing,
                    an_update_of_a_missing_job_is_not_found,
                    an_update_never_touches_the_run_status,
                    deleting_a_job_removes_it_once,
                    deleting_a_missing_job_returns_false,
                    recording_a_run_result_returns_the_previous_status,
                    an_older_run_result_is_ignored,
                    a_run_result_for_a_deleted_job_returns_none,
                    a_run_result_naming_another_team_is_not_applied,
                    run_results_are_recorded_as_a_batch_in_order,
                    scanning_visits_every_job_of_every_team_exactly_once,
                    scanning_an_empty_store_finds_nothing,
                ],
                executions: [
                    beginning_an_attempt_records_it_in_flight_and_returns_the_stored_job,
                    a_manual_run_is_recorded_with_its_trigger,
                    a_duplicate_attempt_is_recorded_once,
                    a_duplicate_within_one_batch_is_recorded_once,
                    a_duplicate_of_a_finished_attempt_returns_its_outcome,
                    each_attempt_of_a_run_is_recorded_separately,
                    a_run_made_before_a_pause_is_dropped,
                    a_run_of_a_deleted_job_is_dropped,
                    a_run_naming_another_teams_job_is_dropped,
                    a_batch_of_starts_gets_one_outcome_each_in_order,
                    finishing_an_attempt_records_its_outcome,
                    a_finished_attempt_is_never_overwritten,
                    finishing_an_unknown_attempt_changes_nothing,
                    only_finished_attempts_are_listed_newest_first,
                    paging_through_executions_returns_each_exactly_once,
                    executions_are_listed_per_team_and_job,
                    an_execution_is_read_only_through_its_team_and_job,
                    deleting_a_jobs_executions_leaves_the_others,
                    pruning_deletes_only_finished_executions_older_than_the_cutoff,
                    pruning_always_keeps_each_jobs_latest_executions,
                    an_attempt_in_flight_does_not_take_the_place_of_a_kept_execution,
                ],
                keys: [
                    a_key_round_trips_by_its_hash,
                    an_unknown_hash_finds_nothing,
                    keys_are_listed_oldest_first_for_everyone_or_one_team,
                    revoking_a_key_by_its_prefix_returns_it_revoked,
                    revoking_a_shared_prefix_revokes_every_key_with_it,
                    revoking_again_keeps_the_first_revocation_time,
                    revoking_an_unknown_prefix_revokes_nothing,
                    an_expired_key_is_not_usable,
                    the_store_is_empty_until_a_key_is_added,
                    touching_a_key_records_its_last_use_and_never_goes_back,
                    touching_an_unknown_key_changes_nothing,
                ],
                teams: [
                    a_teams_secrets_round_trip,
                    an_unknown_team_has_no_secrets,
                    inserting_an_existing_team_changes_nothing,
                    replacing_needs_the_current_secret,
                    a_rotation_keeps_the_previous_secret_signing,
                    ensuring_a_team_twice_returns_the_same_secret,
                    concurrent_first_uses_agree_on_one_secret,
                ],
                queue: [
                    enqueued_runs_are_delivered_as_sent,
                    separate_enqueues_are_all_delivered,
                    enqueueing_nothing_delivers_nothing,
                ],
            }
        }
    };
}

/// The embedded queue's own operations, for one SQLite flavour.
macro_rules! sqlite_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            expand_tests! {
                crate, $factory;
                sqlite: [
                    a_run_is_not_delivered_before_its_time,
                    sub_second_delivery_times_are_kept,
                    a_leased_run_is_not_delivered_again_until_its_lease_ends,
                    runs_are_delivered_in_delivery_order_up_to_the_limit,
                    an_acknowledged_run_is_gone,
                    a_released_run_is_delivered_again_at_the_given_time,
                    the_next_delivery_time_is_the_earliest_deliverable,
                    a_due_job_is_claimed_once_with_its_deterministic_run_id,
                    a_job_claimed_ahead_is_delivered_at_its_scheduled_time_not_before,
                    a_run_later_than_the_misfire_grace_is_skipped_but_the_job_advances,
                    a_fired_once_job_is_disabled,
                    claiming_a_job_bumps_its_version_so_a_concurrent_update_conflicts,
                    jobs_without_a_next_run_are_never_claimed,
                    claiming_takes_the_earliest_due_jobs_up_to_the_limit,
                    recovery_releases_every_lease,
                    recovery_records_attempts_in_flight_as_interrupted,
                    recovery_skips_scheduled_runs_missed_while_the_service_was_down,
                    deleting_a_job_drops_its_queued_runs,
                ],
            }
        }
    };
}

conformance_suite!(sqlite_file, crate::backend::sqlite_file());
conformance_suite!(sqlite_memory, crate::backend::sqlite_memory());
conformance_suite!(dynamo, crate::backend::dynamo());

sqlite_suite!(sqlite_queue_file, crate::backend::SqliteBackend::file());
sqlite_suite!(sqlite_queue_memory, crate::backend::SqliteBackend::memory());
