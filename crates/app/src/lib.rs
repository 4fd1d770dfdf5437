//! skywire-app: SDK for custom skywire apps (owned by the app-SDK work).
