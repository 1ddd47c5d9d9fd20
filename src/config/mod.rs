//! Configuration: the schema, loading with `${...}` interpolation, and
//! validation that reports every problem at once with file:line:column.

pub mod schema;

pub use schema::*;
