//! Example custom app (owned by the app-SDK work); placeholder until it lands.
fn main() {}
