//! An admin's pages of the web portal, in process (see `web.rs`).
