/**
 * Colours only on a terminal. picocolors also colours whenever CI is set,
 * which puts escape codes into logs and into the output scripts parse.
 */
import picocolors from 'picocolors';

const wanted = (stream: NodeJS.WriteStream): boolean =>
  // isTTY is typed boolean but is undefined on a pipe, and createColors(undefined) means "auto".
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-boolean-literal-compare
  stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';

/** For text written to stderr (errors, progress). */
export const errColors = picocolors.createColors(wanted(process.stderr));
/** For text written to stdout (reports). */
export const outColors = picocolors.createColors(wanted(process.stdout));
