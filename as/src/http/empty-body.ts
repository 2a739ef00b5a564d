/**
 * Ends a reply with no body and no Content-Type. koa types a '' body as text/plain and answers
 * a status it was given no body for with the reason phrase as text/plain; a reply that carries
 * nothing must not claim a media type (an XCAP client would take it for the resource's).
 */
export function emptyBody(ctx: { status: number; body: unknown; remove(field: string): void }, status?: number): void {
  if (status !== undefined) ctx.status = status;
  ctx.body = '';
  ctx.remove('Content-Type');
}
