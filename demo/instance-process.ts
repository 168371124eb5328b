/**
 * Entry point of an instance run as its own process by demo/main.ts: reads its config from the
 * environment, reports its URL over IPC, and stops when told to or when the parent goes away.
 */
import { startInstance, type InstanceConfig } from './instance.js';

const config = JSON.parse(process.env['TIERCACHE_DEMO_INSTANCE'] ?? 'null') as InstanceConfig | null;
if (config === null || process.send === undefined) {
  console.error('demo/instance-process.ts is started by demo/main.ts (npm run demo)');
  process.exit(2);
}

const instance = await startInstance(config);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await instance.close();
  process.disconnect?.();
};
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void stop();
});
// Without its parent (a crash, a kill -9) nobody would ever stop this process.
process.on('disconnect', () => void stop().finally(() => process.exit(0)));
process.on('SIGINT', () => {});
process.send({ type: 'ready', url: instance.url });
