"""Widgets of the chat screen: chat log, message widgets, tool cards, prompt input, footer."""
