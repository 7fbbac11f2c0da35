/**
 * How large a subject token may be: the STS's limit and the pipeline client's
 * read cap, side by side so that their relationship is written down once.
 */

/**
 * Longest subject token the STS accepts, in characters (checked in the
 * request's shape and again before decoding). Entra access tokens are
 * 1.5-3 KiB; CI ID tokens about 1 KiB.
 */
export const MAX_SUBJECT_TOKEN_CHARS = 16 * 1024;

/**
 * Most the pipeline client reads from a secret input (a subject or GitLab token
 * file, a variable, stdin), in bytes: four times the STS's limit, on purpose.
 * The cap stops what cannot be a token at all (a huge file, `/dev/zero`)
 * before it costs memory or is uploaded; a token between the two limits is
 * sent, and the STS refuses it (`invalid_request`). The STS's default request
 * body limit (`server.bodyLimit`) is the same 64 KiB.
 */
export const MAX_SECRET_INPUT_BYTES = 4 * MAX_SUBJECT_TOKEN_CHARS;
