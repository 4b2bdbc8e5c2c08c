//! Name, label, port and IP validators. (Interface stub: being implemented.)
