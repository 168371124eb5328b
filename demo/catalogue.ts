/**
 * The demo's origin: a product catalogue in a real database. SQLite (better-sqlite3, a file in a
 * temp dir that every instance process opens) by default; PostgreSQL when DATABASE_URL is set.
 * A product read joins its reviews and aggregates them, the kind of query a cache is for.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export interface Product {
  id: number;
  name: string;
  category: string;
  price: number;
  stock: number;
  rating: number | null;
  reviews: number;
}

export type DatabaseConfig = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface Catalogue {
  readonly label: string;
  product(id: number): Promise<Product | undefined>;
  setPrice(id: number, price: number): Promise<boolean>;
  /** Queries run since open, for the origin-calls charts. */
  readonly queries: number;
  close(): Promise<void>;
}

const CATEGORIES = ['books', 'garden', 'kitchen', 'toys', 'tools', 'music', 'sports', 'office'];
const REVIEWS_PER_PRODUCT = 8;
const TABLE = 'tiercache_demo_products';
const REVIEWS = 'tiercache_demo_reviews';

/** Creates the tables afresh and fills them with `count` products and their reviews. */
export async function seed(config: DatabaseConfig, count: number): Promise<void> {
  if (config.kind === 'sqlite') {
    const db = new Database(config.file);
    db.pragma('journal_mode = WAL');
    db.exec(`DROP TABLE IF EXISTS ${REVIEWS}; DROP TABLE IF EXISTS ${TABLE};
      CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
        price REAL NOT NULL, stock INTEGER NOT NULL);
      CREATE TABLE ${REVIEWS} (product_id INTEGER NOT NULL, stars INTEGER NOT NULL);
      CREATE INDEX ${REVIEWS}_product ON ${REVIEWS} (product_id);`);
    const product = db.prepare(`INSERT INTO ${TABLE} VALUES (?, ?, ?, ?, ?)`);
    const review = db.prepare(`INSERT INTO ${REVIEWS} VALUES (?, ?)`);
    db.transaction(() => {
      for (let id = 1; id <= count; id++) {
        product.run(id, `Product ${id}`, CATEGORIES[id % CATEGORIES.length], priceOf(id), (id * 37) % 500);
        for (let r = 0; r < REVIEWS_PER_PRODUCT; r++) review.run(id, 1 + ((id * 7 + r * 3) % 5));
      }
    })();
    db.close();
    return;
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${REVIEWS}; DROP TABLE IF EXISTS ${TABLE};
      CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL, stock INTEGER NOT NULL);
      CREATE TABLE ${REVIEWS} (product_id INTEGER NOT NULL, stars INTEGER NOT NULL);`);
    await client.query(
      `INSERT INTO ${TABLE} SELECT id, 'Product ' || id, ($2::text[])[1 + id % $3], round((5 + (id * 7919 % 20000) / 100.0)::numeric, 2), id * 37 % 500
       FROM generate_series(1, $1::int) AS id`,
      [count, CATEGORIES, CATEGORIES.length],
    );
    await client.query(
      `INSERT INTO ${REVIEWS} SELECT id, 1 + (id * 7 + r * 3) % 5 FROM generate_series(1, $1::int) AS id,
       generate_series(0, $2::int - 1) AS r`,
      [count, REVIEWS_PER_PRODUCT],
    );
    await client.query(
      `CREATE INDEX ${REVIEWS}_product ON ${REVIEWS} (product_id); ANALYZE ${TABLE}; ANALYZE ${REVIEWS}`,
    );
  } finally {
    await client.end();
  }
}

function priceOf(id: number): number {
  return Math.round((5 + ((id * 7919) % 20000) / 100) * 100) / 100;
}

const SELECT = (param: (n: number) => string) =>
  `SELECT p.id, p.name, p.category, p.price, p.stock, AVG(r.stars) AS rating, COUNT(r.stars) AS reviews
   FROM ${TABLE} p LEFT JOIN ${REVIEWS} r ON r.product_id = p.id WHERE p.id = ${param(1)}
   GROUP BY p.id, p.name, p.category, p.price, p.stock`;

interface Row {
  id: number;
  name: string;
  category: string;
  price: number;
  stock: number;
  rating: number | string | null;
  reviews: number | string;
}

function toProduct(row: Row): Product {
  return {
    id: row.id,
    name: row.name,
    category: row.category,
    price: Number(row.price),
    stock: row.stock,
    rating: row.rating === null ? null : Math.round(Number(row.rating) * 100) / 100,
    reviews: Number(row.reviews),
  };
}

/**
 * Opens the catalogue. `latencyMs` is added to every query to stand for a database across a
 * network (a local SQLite file answers in microseconds, which would hide what caching saves).
 */
export function openCatalogue(config: DatabaseConfig, latencyMs: number): Catalogue {
  let queries = 0;
  const delay = (): Promise<void> =>
    latencyMs > 0 ? new Promise((resolve) => setTimeout(resolve, latencyMs)) : Promise.resolve();
  if (config.kind === 'sqlite') {
    const db = new Database(config.file);
    db.pragma('busy_timeout = 5000');
    const select = db.prepare<[number], Row>(SELECT(() => '?'));
    const update = db.prepare<[number, number]>(`UPDATE ${TABLE} SET price = ? WHERE id = ?`);
    return {
      label: `SQLite (${config.file})`,
      get queries() {
        return queries;
      },
      async product(id) {
        queries++;
        await delay();
        const row = select.get(id);
        return row === undefined ? undefined : toProduct(row);
      },
      async setPrice(id, price) {
        queries++;
        await delay();
        return update.run(price, id).changes > 0;
      },
      close: async () => {
        db.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: config.url, max: 8 });
  return {
    label: 'PostgreSQL (DATABASE_URL)',
    get queries() {
      return queries;
    },
    async product(id) {
      queries++;
      await delay();
      const { rows } = await pool.query<Row>(
        SELECT((n) => `$${n}`),
        [id],
      );
      return rows[0] === undefined ? undefined : toProduct(rows[0]);
    },
    async setPrice(id, price) {
      queries++;
      await delay();
      const result = await pool.query(`UPDATE ${TABLE} SET price = $1 WHERE id = $2`, [price, id]);
      return (result.rowCount ?? 0) > 0;
    },
    close: () => pool.end(),
  };
}
