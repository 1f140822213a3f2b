CREATE TABLE "artifact_schemas" (
	"id" text PRIMARY KEY NOT NULL,
	"hash" text NOT NULL,
	"definition" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "artifact_schema_hashes" jsonb DEFAULT '{}'::jsonb NOT NULL;