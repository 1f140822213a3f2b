// Every workflow the devflow worker hosts.
export { stackCheckWorkflow } from './stack-check.ts';
export { runWorkflow } from './run.ts';
export { notifyWorkflow } from './notify.ts';
