import { DevflowError } from '../lib/errors.ts';
import type { SessionDriver, SessionDrivers } from './driver.ts';

/** The backends this worker can drive, by name. */
export function sessionDrivers(drivers: Record<string, SessionDriver>): SessionDrivers {
  return {
    forBackend(backend: string): SessionDriver {
      const driver = drivers[backend];
      if (!driver) {
        throw new DevflowError({
          errorClass: 'fatal',
          code: 'backend_unavailable',
          message: `session backend ${backend} is not available on this worker (available: ${Object.keys(drivers).join(', ')})`,
        });
      }
      return driver;
    },
  };
}
