-- How the captured bytes in this directory were produced (PostgreSQL 15, wal_level=logical,
-- logical_decoding_work_mem=64kB). Phase 1 feeds proto1.hex; slot s2 is created at its end,
-- so phase 2 (three transactions larger than 64kB: committed, subtransaction rolled back,
-- rolled back) feeds proto2_stream.hex and frames.hex.

-- Phase 1
CREATE TYPE mood AS ENUM ('sad','ok','happy');
CREATE TABLE items (id int PRIMARY KEY, name text, qty int, note text);
CREATE TABLE full_t (a int, b text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE TABLE toasty (id int PRIMARY KEY, big text, n int);
CREATE TABLE parent (id serial PRIMARY KEY, v text);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent(id), v text);
CREATE TABLE moods (id int PRIMARY KEY, m mood);
CREATE PUBLICATION p FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('s1','pgoutput');
INSERT INTO items VALUES (1,'apple',3,NULL),(2,'naïve café, "quoted"'||E'\n'||'line2',NULL,'');
UPDATE items SET qty=4 WHERE id=1;
UPDATE items SET id=10 WHERE id=2;
DELETE FROM items WHERE id=10;
INSERT INTO full_t VALUES (1,'one'),(2,NULL);
UPDATE full_t SET b='uno' WHERE a=1;
DELETE FROM full_t WHERE a=2;
INSERT INTO toasty VALUES (1,(SELECT string_agg(md5(i::text),'') FROM generate_series(1,200) i),0);
UPDATE toasty SET n=1 WHERE id=1;
INSERT INTO parent(v) VALUES ('p1');
INSERT INTO child(parent_id,v) VALUES (1,'c1');
TRUNCATE parent, child RESTART IDENTITY CASCADE;
TRUNCATE items;
SELECT pg_logical_emit_message(true,'pgseed','transactional hello');
SELECT pg_logical_emit_message(false,'pgseed','non-transactional');
INSERT INTO moods VALUES (1,'happy');
ALTER TABLE items ADD COLUMN extra text DEFAULT 'd';
INSERT INTO items VALUES (3,'plum',1,NULL,'e');
SELECT pg_replication_origin_create('upstream');
SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/1234ABCD', '2024-01-02 03:04:05.678+00');
INSERT INTO items VALUES (4,'from origin',2,NULL,'o');
COMMIT;
SELECT pg_replication_origin_session_reset();
SELECT pg_create_logical_replication_slot('s2','pgoutput');

-- Phase 2
BEGIN;
INSERT INTO items SELECT g, repeat('x',1000), g, NULL, 'e' FROM generate_series(100,199) g;
SELECT pg_logical_emit_message(true,'pgseed','in stream');
UPDATE items SET qty = qty + 1 WHERE id = 100;
UPDATE items SET id = 1100 WHERE id = 102;
DELETE FROM items WHERE id = 101;
INSERT INTO moods VALUES (2,'ok');
TRUNCATE full_t;
COMMIT;
BEGIN;
INSERT INTO items SELECT g, repeat('y',1000), g, NULL, 'e' FROM generate_series(200,299) g;
SAVEPOINT sp;
INSERT INTO items SELECT g, repeat('z',1000), g, NULL, 'e' FROM generate_series(300,399) g;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO items VALUES (400,'after rollback to savepoint',1,NULL,'e');
COMMIT;
BEGIN;
INSERT INTO items SELECT g, repeat('w',1000), g, NULL, 'e' FROM generate_series(500,599) g;
ROLLBACK;
INSERT INTO items VALUES (600,'small after stream',1,NULL,'e');
