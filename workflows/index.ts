// Every workflow the devflow worker hosts.
export { stackCheckWorkflow } from './stack-check.ts';
export { runWorkflow } from './run.ts';
export { notifyWorkflow } from './notify.ts';
export { scheduledRunWorkflow } from './scheduled-run.ts';
