//! Bearer-token authentication. (Interface stub: being implemented.)
