// The conversation's session id: one per browser tab (sessionStorage), so a reload continues it.

const SESSION_KEY = "mongodb-session-manager.playground.session";

export function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `chat-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** This tab's session id, made on its first visit. */
export function tabSessionId() {
  let id = sessionStorage.getItem(SESSION_KEY);
  if (!id) {
    id = newSessionId();
    rememberSessionId(id);
  }
  return id;
}

export function rememberSessionId(id) {
  sessionStorage.setItem(SESSION_KEY, id);
}
