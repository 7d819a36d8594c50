//! The transaction coordinator runtime driven through the handlers.
