"""Cell sentences as arrays: ranking genes into sentences and decoding sentences back into expression."""
