/** A listening address as a URL's host: `localhost` for every interface, an IPv6 address in brackets. */
export function urlHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "::") return "localhost";
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
