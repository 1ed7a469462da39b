//! querier
