CREATE TYPE "public"."approval_state" AS ENUM('pending', 'approved', 'rejected', 'aborted');--> statement-breakpoint
CREATE TYPE "public"."decision_action" AS ENUM('approve', 'reject', 'abort');--> statement-breakpoint
CREATE TYPE "public"."phase_state" AS ENUM('pending', 'running', 'awaiting_artifact', 'validating', 'awaiting_approval', 'completed', 'failed');--> statement-breakpoint
CREATE TYPE "public"."run_state" AS ENUM('planning', 'executing', 'awaiting_approval', 'paused', 'completed', 'failed', 'aborted');--> statement-breakpoint
CREATE TYPE "public"."session_state" AS ENUM('CREATED', 'BOOTSTRAPPING', 'READY', 'BUSY', 'WAITING_FOR_APPROVAL', 'ARTIFACT_TIMEOUT', 'HUNG', 'CRASHED', 'RESUMING', 'REBOOTSTRAPPED', 'FAILED_NEEDS_HUMAN');--> statement-breakpoint
CREATE TABLE "agent_personas" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"hash" text NOT NULL,
	"definition" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "approval_decisions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"approval_request_id" uuid NOT NULL,
	"action" "decision_action" NOT NULL,
	"comment" text,
	"decided_by" text,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "approval_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"run_id" uuid NOT NULL,
	"phase_id" uuid,
	"gate_key" text NOT NULL,
	"state" "approval_state" DEFAULT 'pending' NOT NULL,
	"idempotency_key" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "artifacts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"run_id" uuid NOT NULL,
	"phase_id" uuid NOT NULL,
	"path" text NOT NULL,
	"schema_id" text NOT NULL,
	"hash" text NOT NULL,
	"valid" boolean NOT NULL,
	"validation_error" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "run_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"phase_id" uuid,
	"seq" integer NOT NULL,
	"type" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "run_phases" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"run_id" uuid NOT NULL,
	"phase_key" text NOT NULL,
	"ordinal" integer NOT NULL,
	"role_id" text NOT NULL,
	"state" "phase_state" DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"template_id" text NOT NULL,
	"template_hash" text NOT NULL,
	"state" "run_state" DEFAULT 'planning' NOT NULL,
	"paused_from_state" "run_state",
	"repo_path" text NOT NULL,
	"base_branch" text NOT NULL,
	"worktree_root" text,
	"requirements_md" text NOT NULL,
	"current_phase_id" uuid,
	"final_report_path" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "stack_checks" (
	"id" text PRIMARY KEY NOT NULL,
	"worker_identity" text NOT NULL,
	"checked_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tui_sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"run_id" uuid NOT NULL,
	"role_id" text NOT NULL,
	"backend" text NOT NULL,
	"cwd" text NOT NULL,
	"state" "session_state" DEFAULT 'CREATED' NOT NULL,
	"expected_artifact_path" text,
	"expected_schema" text,
	"last_prompt_hash" text,
	"last_prompt_at" timestamp with time zone,
	"recovery_attempts" integer DEFAULT 0 NOT NULL,
	"tmux_session" text,
	"tmux_window" text,
	"last_known_pane_pid" integer,
	"last_capture_seq" integer DEFAULT 0 NOT NULL,
	"last_output_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tui_transcripts" (
	"session_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"chunk" text NOT NULL,
	"captured_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tui_transcripts_session_id_seq_pk" PRIMARY KEY("session_id","seq")
);
--> statement-breakpoint
CREATE TABLE "workflow_templates" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"hash" text NOT NULL,
	"definition" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "approval_decisions" ADD CONSTRAINT "approval_decisions_approval_request_id_approval_requests_id_fk" FOREIGN KEY ("approval_request_id") REFERENCES "public"."approval_requests"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approval_requests" ADD CONSTRAINT "approval_requests_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approval_requests" ADD CONSTRAINT "approval_requests_phase_id_run_phases_id_fk" FOREIGN KEY ("phase_id") REFERENCES "public"."run_phases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "artifacts" ADD CONSTRAINT "artifacts_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "artifacts" ADD CONSTRAINT "artifacts_phase_id_run_phases_id_fk" FOREIGN KEY ("phase_id") REFERENCES "public"."run_phases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_events" ADD CONSTRAINT "run_events_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_events" ADD CONSTRAINT "run_events_phase_id_run_phases_id_fk" FOREIGN KEY ("phase_id") REFERENCES "public"."run_phases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_phases" ADD CONSTRAINT "run_phases_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_template_id_workflow_templates_id_fk" FOREIGN KEY ("template_id") REFERENCES "public"."workflow_templates"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tui_sessions" ADD CONSTRAINT "tui_sessions_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tui_transcripts" ADD CONSTRAINT "tui_transcripts_session_id_tui_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."tui_sessions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "agent_personas_name_version" ON "agent_personas" USING btree ("name","version");--> statement-breakpoint
CREATE UNIQUE INDEX "approval_decisions_idempotency_key" ON "approval_decisions" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "approval_requests_idempotency_key" ON "approval_requests" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "artifacts_run_path_hash" ON "artifacts" USING btree ("run_id","path","hash");--> statement-breakpoint
CREATE UNIQUE INDEX "run_events_idempotency_key" ON "run_events" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "run_events_run_seq" ON "run_events" USING btree ("run_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "run_phases_run_key" ON "run_phases" USING btree ("run_id","phase_key");--> statement-breakpoint
CREATE UNIQUE INDEX "run_phases_run_ordinal" ON "run_phases" USING btree ("run_id","ordinal");--> statement-breakpoint
CREATE INDEX "runs_state_created" ON "runs" USING btree ("state","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "tui_sessions_live_role" ON "tui_sessions" USING btree ("run_id","role_id") WHERE "tui_sessions"."state" <> 'FAILED_NEEDS_HUMAN';--> statement-breakpoint
CREATE UNIQUE INDEX "workflow_templates_name_version" ON "workflow_templates" USING btree ("name","version");