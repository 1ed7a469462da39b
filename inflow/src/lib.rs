//! inflow
