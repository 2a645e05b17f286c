"""The web layer the Session Viewer and the playground share (the library in src/ never imports it)."""
