/**
 * podman's rule for the names users give containers, pods, volumes and
 * networks: a letter or digit, then letters, digits, '_', '.' and '-'.
 * One rule, so a name one verb accepts is never refused by another, and no
 * name can hold '/' or start with '.' (each becomes a file or a directory).
 */
export const OBJECT_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
