export { freePorts } from '../../lib/ports.ts';
