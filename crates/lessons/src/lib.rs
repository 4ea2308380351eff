//! Lesson content and the model catalogue, compiled into the app.

#![deny(missing_docs)]

pub mod catalogue;
pub mod lesson;
