//! Unit tests of every op against straightforward f64 references.

mod accuracy;
mod limits;
mod ops;
mod reference;
mod validation;
