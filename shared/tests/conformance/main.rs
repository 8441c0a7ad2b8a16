//! Store conformance: one suite per port (`suite/`), written once and run against every
//! adapter. Each suite module writes its tests once, as `pub async fn name(b: Backend)`,
//! inside `conformance_tests! { .. }`: the macro keeps them and expands each into one
//! `#[tokio::test]` per backend (`suite::jobs::dynamo::name`, ...). The backends are listed
//! here, once.
//!
//! `sqlite.rs` holds the embedded backend's own queue operations, which have no port; they
//! run against both SQLite flavours through `sqlite_tests!`.

/// The suite's tests, defined once, each run against every backend. To add an adapter,
/// write an `async fn` in `backend.rs` that returns a fresh, empty `Backend` and add one
/// line here.
macro_rules! conformance_tests {
    ($($(#[$meta:meta])* pub async fn $name:ident($b:ident: Backend) $body:block)*) => {
        $($(#[$meta])* pub async fn $name($b: Backend) $body)*
        for_each_backend!(
            [sqlite_file, crate::backend::sqlite_file()],
            [sqlite_memory, crate::backend::sqlite_memory()],
            [dynamo, crate::backend::dynamo()];
            $($name),*
        );
    };
}

/// The embedded queue's tests, defined once, each run on a file and in memory.
macro_rules! sqlite_tests {
    ($($(#[$meta:meta])* pub async fn $name:ident($b:ident: SqliteBackend) $body:block)*) => {
        $($(#[$meta])* pub async fn $name($b: SqliteBackend) $body)*
        for_each_backend!(
            [sqlite_file, crate::backend::SqliteBackend::file()],
            [sqlite_memory, crate::backend::SqliteBackend::memory()];
            $($name),*
        );
    };
}

/// One module per backend, with one `#[tokio::test]` per test calling `super::test` on a
/// fresh backend.
macro_rules! for_each_backend {
    ([$backend:ident, $factory:expr] $(, [$more:ident, $more_factory:expr])*; $($name:ident),*) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($factory.await).await;
                }
            )*
        }
        for_each_backend!($([$more, $more_factory]),*; $($name),*);
    };
    (; $($name:ident),*) => {};
}

mod backend;
mod fixtures;
mod sqlite;
mod suite;
