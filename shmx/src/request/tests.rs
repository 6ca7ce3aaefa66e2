//! In-process tests of request/response (cross-process ones: `tests/request_response.rs`).
