/**
 * /etc/init.d/squashtree for OpenRC: mounts every tree at boot after the
 * local filesystems, commits and unmounts them at shutdown (with a time
 * limit and a clear message when a tree is busy), plus `status` and
 * `commit` as extra commands.
 */
import { commandLine, header, type GeneratedFile, type Invocation } from './files.js';

export const OPENRC_PATH = '/etc/init.d/squashtree';

export function openrcFiles(inv: Invocation): GeneratedFile[] {
  const content = `#!/sbin/openrc-run
${header('openrc')}
description="Mount squashtree trees: SquashFS images with a writable overlay"
extra_started_commands="commit"
description_commit="Commit pending changes of every tree and stay mounted"

_squashtree() {
	${commandLine(inv)} "$@"
}
# Seconds a stop may take (commits first); override in /etc/conf.d/squashtree.
: "\${SQUASHTREE_STOP_TIMEOUT:=600}"

depend() {
	need localmount
	after bootmisc
	before local cron
}

start() {
	ebegin "Mounting squashtree trees"
	_squashtree --quiet start
	eend $? "squashtree could not mount every tree (run: squashtree doctor)"
}

stop() {
	ebegin "Committing and unmounting squashtree trees"
	# timeout runs programs, not shell functions: call the command line itself.
	timeout "$SQUASHTREE_STOP_TIMEOUT" ${commandLine(inv)} --quiet stop
	eend $? "a tree is busy or its commit failed: see above; committed changes are safe, run squashtree status"
}

status() {
	_squashtree status
}

commit() {
	ebegin "Committing squashtree trees"
	_squashtree --quiet commit
	eend $?
}
`;
  return [{ path: OPENRC_PATH, content, mode: 0o755 }];
}
