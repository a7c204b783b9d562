ALTER TABLE "rooms" ADD COLUMN "owner_node" text;--> statement-breakpoint
ALTER TABLE "rooms" ADD COLUMN "owner_token" bigint DEFAULT 0 NOT NULL;