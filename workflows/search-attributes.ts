// devflow's Temporal search attributes: a run is findable in the Web UI by id, template,
// state and repository. Shared by workflow code (upserts) and the stack (registration).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RUN_ID = defineSearchAttributeKey('DevflowRunId', SearchAttributeType.KEYWORD);
export const TEMPLATE = defineSearchAttributeKey('DevflowTemplate', SearchAttributeType.KEYWORD);
export const RUN_STATE = defineSearchAttributeKey('DevflowState', SearchAttributeType.KEYWORD);
export const REPO = defineSearchAttributeKey('DevflowRepo', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [RUN_ID, TEMPLATE, RUN_STATE, REPO] as const;
