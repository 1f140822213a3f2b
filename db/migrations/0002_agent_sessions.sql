CREATE TABLE "agent_usage" (
	"session_id" uuid NOT NULL,
	"phase_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cache_read_tokens" bigint DEFAULT 0 NOT NULL,
	"cache_write_tokens" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "agent_usage_session_id_phase_id_pk" PRIMARY KEY("session_id","phase_id")
);
--> statement-breakpoint
ALTER TABLE "tui_sessions" ADD COLUMN "agent_session_id" text;--> statement-breakpoint
ALTER TABLE "tui_sessions" ADD COLUMN "playback" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "agent_usage" ADD CONSTRAINT "agent_usage_session_id_tui_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."tui_sessions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_usage" ADD CONSTRAINT "agent_usage_phase_id_run_phases_id_fk" FOREIGN KEY ("phase_id") REFERENCES "public"."run_phases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_usage" ADD CONSTRAINT "agent_usage_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agent_usage_run" ON "agent_usage" USING btree ("run_id");