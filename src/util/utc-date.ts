/** The UTC calendar date of an instant (epoch ms) as `YYYY-MM-DD`: GitLab's `expires_at` form. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
