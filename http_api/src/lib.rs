//! http_api
