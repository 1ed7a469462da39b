//! test_helpers
