"""The agent desk: tickets and handoffs in the agents' forum group, live conversations in agents' private chats."""
