//! Custom apps: see the module list in lib.rs (owned by the app-SDK work).
