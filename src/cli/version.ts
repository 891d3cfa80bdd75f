/** The version --version, the man page and generated files report. */
export const VERSION = '0.1.0';
