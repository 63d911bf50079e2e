//! The fuzz targets' oracles, and the structure-aware target's edits. An oracle that
//! does not hold panics with what it saw, which libFuzzer reports as a crash and saves.
//!
//! The policy runs natively through `validate_with`, with a ServiceAccount lookup that
//! answers from the input itself: the payload's `serviceAccount` object (absent: the
//! lookup fails, as the host does for a missing ServiceAccount).

mod json;
pub mod oracle;
pub mod structured;
