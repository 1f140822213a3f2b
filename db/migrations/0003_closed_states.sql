ALTER TYPE "public"."approval_state" ADD VALUE 'closed';--> statement-breakpoint
ALTER TYPE "public"."session_state" ADD VALUE 'CLOSED';