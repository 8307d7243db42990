# %% [markdown]
# # 04_randomization

# %%
print(1)
