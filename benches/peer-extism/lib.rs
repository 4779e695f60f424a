//! Nothing here: the peer benchmark is `benches/extism_echo.rs`.
