# %% [markdown]
# # 02_own_layer

# %%
print(1)
