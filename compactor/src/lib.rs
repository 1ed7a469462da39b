//! compactor
