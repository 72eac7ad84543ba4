# Drives ts/cli/ask-secret.ts (built, in dist/) on a pseudo-terminal, as a person at a terminal
# would: waits for the prompt and for a timer of the prompting process to fire after it (the
# prompt must not block the event loop), then types an answer or Ctrl-C, and reports what the
# terminal's ECHO flag was during and after the prompt, how the process ended and what it
# printed, as one JSON line. Usage: tty-prompt.py answer|interrupt DIST_DIR
# Every wait is on the terminal's output (select), bounded; nothing waits for time to pass.
import os, pty, sys, termios, select, json, signal
mode, dist = sys.argv[1], sys.argv[2]
code = """
import { askSecret } from '%s/cli/ask-secret.js';
let ticks = 0;
const t = setInterval(() => { ticks++; if (ticks <= 1000) process.stderr.write('[tick]'); }, 5);
const answer = await askSecret('Secret: ');
clearInterval(t);
process.stdout.write('\\nRESULT ' + JSON.stringify({ answer, ticks }) + '\\n');
""" % dist
env = {k: v for k, v in os.environ.items() if not k.startswith('SSH_ASKPASS')}
pid, fd = pty.fork()
if pid == 0:
    os.execvpe('node', ['node', '--input-type=module', '-e', code], env)
out = b''
def wait_for(marker, start=0):
    global out
    for _ in range(2000):  # bounded: each read waits for output, at most 10 s each
        if marker in out[start:]:
            return True
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        out += chunk
    return False
ok = wait_for(b'Secret: ')
at = out.index(b'Secret: ') if ok else 0
ok = ok and wait_for(b'[tick]', at)
echo_during = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
if mode == 'answer':
    os.write(fd, b'hunter2\n')
    wait_for(b'RESULT')
    wait_for(b'\n', out.index(b'RESULT') if b'RESULT' in out else 0)
else:
    os.write(fd, b'\x03')
echo_after = None
_, status = os.waitpid(pid, 0)
try:
    echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
except Exception as e:
    echo_after = 'error: ' + str(e)
while True:
    try:
        r, _, _ = select.select([fd], [], [], 0)
        if not r: break
        chunk = os.read(fd, 4096)
        if not chunk: break
        out += chunk
    except OSError:
        break
print(json.dumps({ 'sawPromptAndTick': ok, 'echoDuring': echo_during, 'echoAfter': echo_after,
  'signal': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, 'exit': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
  'output': out.decode('utf8', 'replace') }))
