// How the run workflow calls its activities: one retry profile per kind of step, each saying
// why, and `act`, which runs an activity with the summary the Web UI shows next to it.
import { ActivityCancellationType, proxyActivities, proxyLocalActivities, type ActivityOptions, type LocalActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.ts';

const retry = {
  initialInterval: '200 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  // What a retry cannot fix (fatal) or a person must (human_required): routed by the workflow at once.
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};
/** Database steps: short, idempotent, retried until they go through. */
export const STEP: ActivityOptions = { startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 20 } };
/** Talking to an agent: a few tries, then a human gate (a person sees why). */
export const DELIVERY: ActivityOptions = { startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 3 } };
/** Waiting for an artifact: long, heartbeating, resumable; on abort it stops and cleans up first. */
export const WAIT: ActivityOptions = {
  startToCloseTimeout: '1 day',
  heartbeatTimeout: '10 seconds',
  retry: { ...retry, maximumAttempts: 10 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
};

/**
 * Short database steps run as local activities by the worker that runs the workflow: no trip
 * through Temporal's queues, one marker in the history. Retried like STEP.
 */
export const LOCAL_STEP: LocalActivityOptions = { startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 20 } };

type Name = keyof Activities;
const proxies = new Map<ActivityOptions, Record<string, unknown>>();

/** Runs an activity with a summary the Web UI shows next to it. */
export function act<K extends Name>(options: ActivityOptions, name: K, summary: string, input: Parameters<Activities[K]>[0]): ReturnType<Activities[K]> {
  if (!proxies.has(options)) proxies.set(options, proxyActivities<Activities>(options));
  const fn = proxies.get(options)![name] as { executeWithOptions(o: ActivityOptions, args: unknown[]): ReturnType<Activities[K]> };
  return fn.executeWithOptions({ ...options, summary }, [input]);
}

const localProxies = new Map<LocalActivityOptions, Record<string, unknown>>();

/** Runs a database step as a local activity, with the summary the Web UI shows. */
export function actLocal<K extends Name>(options: LocalActivityOptions, name: K, summary: string, input: Parameters<Activities[K]>[0]): ReturnType<Activities[K]> {
  if (!localProxies.has(options)) localProxies.set(options, proxyLocalActivities<Activities>(options));
  const fn = localProxies.get(options)![name] as { executeWithOptions(o: LocalActivityOptions, args: unknown[]): ReturnType<Activities[K]> };
  return fn.executeWithOptions({ ...options, summary }, [input]);
}
