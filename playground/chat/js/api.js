// The playground API's JSON routes (the streamed reply is in stream.js).

export class ApiError extends Error {}

/** Fetch JSON; a 404 is null (an unknown session), any other failure an ApiError. */
export async function requestJson(path, options = {}) {
  const response = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  if (response.status === 404) return null;
  if (!response.ok) throw new ApiError(`${options.method || "GET"} ${path} failed: HTTP ${response.status}`);
  return response.json();
}

const sessionPath = (sessionId) => `/api/sessions/${encodeURIComponent(sessionId)}`;

export const api = {
  info: () => requestJson("/api/info"),
  history: (sessionId) => requestJson(`${sessionPath(sessionId)}/history`),
  session: (sessionId) => requestJson(sessionPath(sessionId)),
  feedback: (sessionId, rating, comment) =>
    requestJson(`${sessionPath(sessionId)}/feedback`, { method: "POST", body: JSON.stringify({ rating, comment }) }),
};
