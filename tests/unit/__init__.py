"""The unit layer: decision logic through small seams (fake clocks, fake calls), no sandbox; seconds on its own."""
