"""The serving adapter: engine supervisor plus the SageMaker, Vertex and OpenAI contracts."""
